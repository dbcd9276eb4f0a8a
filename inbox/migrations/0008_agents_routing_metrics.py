from tortoise import migrations
from tortoise.migrations import operations as ops
from orjson import loads
from tortoise.fields.base import OnDelete
from tortoise.fields.data import JSON_DUMPS
from tortoise import fields
from tortoise.indexes import Index

class Migration(migrations.Migration):
    dependencies = [('hopthu', '0007_channels_thread_context')]

    initial = False

    operations = [
        ops.CreateModel(
            name='AgentState',
            fields=[
                ('user', fields.OneToOneField('hopthu.User', source_field='user_id', primary_key=True, db_index=True, db_constraint=True, to_field='id', related_name='agent_state', on_delete=OnDelete.CASCADE)),
                ('status', fields.CharField(default='online', max_length=10)),
                ('connections', fields.IntField(default=0)),
                ('last_active_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('offline_since', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('capacity', fields.IntField(null=True)),
                ('last_assigned_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('claims', fields.BigIntField(default=0)),
            ],
            options={'table': 'agent_states', 'app': 'hopthu', 'pk_attr': 'user_id', 'table_description': 'Presence and routing facts about one staff user (one row each, created on first need).'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='CsatSurvey',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('conversation', fields.ForeignKeyField('hopthu.Conversation', source_field='conversation_id', db_constraint=True, to_field='id', related_name='csat_surveys', on_delete=OnDelete.CASCADE)),
                ('inbox_id', fields.IntField()),
                ('agent_id', fields.IntField(null=True)),
                ('message_id', fields.IntField(null=True)),
                ('state', fields.CharField(default='sent', max_length=10)),
                ('rating', fields.IntField(null=True)),
                ('sent_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('answered_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'csat_surveys', 'app': 'hopthu', 'indexes': [Index(fields=['conversation_id', 'state'])], 'pk_attr': 'id', 'table_description': 'One satisfaction survey sent after a resolution, its answer stored as a rating 1–5 only.'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='MetricFact',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('conversation_id', fields.IntField()),
                ('inbox_id', fields.IntField()),
                ('team_id', fields.IntField(null=True)),
                ('agent_id', fields.IntField(null=True)),
                ('channel', fields.CharField(max_length=20)),
                ('kind', fields.CharField(max_length=20)),
                ('value', fields.FloatField()),
                ('held', fields.FloatField(null=True)),
                ('value_bh', fields.FloatField(null=True)),
                ('held_bh', fields.FloatField(null=True)),
                ('at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('day', fields.CharField(max_length=10)),
                ('start_event_id', fields.BigIntField(null=True)),
                ('end_event_id', fields.BigIntField(null=True)),
            ],
            options={'table': 'metric_facts', 'app': 'hopthu', 'indexes': [Index(fields=['kind', 'at', 'agent_id']), Index(fields=['conversation_id'])], 'pk_attr': 'id', 'table_description': 'A number derived from `conversation_events` by agents/metrics.py: rebuilt from the events at any time.'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='ProjectionCursor',
            fields=[
                ('name', fields.CharField(primary_key=True, unique=True, db_index=True, max_length=40)),
                ('position', fields.BigIntField(default=0)),
                ('updated_at', fields.DatetimeField(auto_now=True, auto_now_add=False)),
            ],
            options={'table': 'projection_cursors', 'app': 'hopthu', 'pk_attr': 'name', 'table_description': 'How far a projection of `conversation_events` has read (compare-and-swap: one projector at a time).'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='RoutingQueueEntry',
            fields=[
                ('conversation', fields.OneToOneField('hopthu.Conversation', source_field='conversation_id', primary_key=True, db_index=True, db_constraint=True, to_field='id', related_name='queue_entry', on_delete=OnDelete.CASCADE)),
                ('inbox_id', fields.IntField()),
                ('team_id', fields.IntField(null=True)),
                ('priority', fields.IntField(default=0)),
                ('reasons', fields.JSONField(default=list, encoder=JSON_DUMPS, decoder=loads)),
                ('enqueued_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'routing_queue', 'app': 'hopthu', 'indexes': [Index(fields=['inbox_id', 'priority', 'enqueued_at'])], 'pk_attr': 'conversation_id', 'table_description': 'A conversation waiting for an agent with free capacity: highest priority first, then oldest first.'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='SlaPolicy',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('inbox', fields.OneToOneField('hopthu.Inbox', source_field='inbox_id', db_constraint=True, to_field='id', related_name='sla_policy', on_delete=OnDelete.CASCADE)),
                ('first_response_seconds', fields.IntField(null=True)),
                ('next_response_seconds', fields.IntField(null=True)),
                ('resolution_seconds', fields.IntField(null=True)),
                ('business_hours', fields.BooleanField(default=False)),
                ('updated_at', fields.DatetimeField(auto_now=True, auto_now_add=False)),
            ],
            options={'table': 'sla_policies', 'app': 'hopthu', 'pk_attr': 'id', 'table_description': 'Targets in seconds for one inbox (null: no target). Breaches are recorded as conversation events.'},
            bases=['Model'],
        ),
        ops.AddField(
            model_name='Team',
            name='settings',
            field=fields.JSONField(default=dict, encoder=JSON_DUMPS, decoder=loads),
        ),
    ]
