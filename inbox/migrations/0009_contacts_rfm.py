from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise import fields
from tortoise.indexes import Index

class Migration(migrations.Migration):
    dependencies = [('hopthu', '0008_agents_routing_metrics')]

    initial = False

    operations = [
        ops.CreateModel(
            name='ContactRFM',
            fields=[
                ('contact_id', fields.IntField(primary_key=True, unique=True, db_index=True)),
                ('recency_days', fields.IntField()),
                ('frequency', fields.IntField()),
                ('monetary', fields.BigIntField()),
                ('r', fields.SmallIntField()),
                ('f', fields.SmallIntField()),
                ('m', fields.SmallIntField()),
                ('segment', fields.CharField(max_length=30)),
                ('spend_tier', fields.CharField(max_length=10)),
                ('computed_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'contact_rfm', 'app': 'hopthu', 'indexes': [Index(fields=['segment'])], 'pk_attr': 'contact_id', 'table_description': 'The latest RFM scoring of a customer with orders (recomputed by `contacts.rfm.refresh`).'},
            bases=['Model'],
        ),
        ops.AlterModelOptions(
            name='AgentState',
            options={'table': 'agent_states', 'app': 'hopthu', 'pk_attr': 'user_id', 'table_description': 'Presence and routing facts about one staff user (one row each, created on first need).'},
        ),
        ops.AlterModelOptions(
            name='RoutingQueueEntry',
            options={'table': 'routing_queue', 'app': 'hopthu', 'indexes': [Index(fields=['inbox_id', 'priority', 'enqueued_at'])], 'pk_attr': 'conversation_id', 'table_description': 'A conversation waiting for an agent with free capacity: highest priority first, then oldest first.'},
        ),
    ]
