from tortoise import migrations
from tortoise.migrations import operations as ops
from orjson import loads
from tortoise.fields.base import OnDelete
from tortoise.fields.data import JSON_DUMPS
from tortoise import fields
from tortoise.indexes import Index

class Migration(migrations.Migration):
    dependencies = [('hopthu', '0003_audit_and_permissions')]

    initial = False

    operations = [
        ops.CreateModel(
            name='ConsentRecord',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('contact', fields.ForeignKeyField('hopthu.Contact', source_field='contact_id', db_constraint=True, to_field='id', related_name='consents', on_delete=OnDelete.CASCADE)),
                ('kind', fields.CharField(max_length=40)),
                ('granted', fields.BooleanField()),
                ('channel', fields.CharField(max_length=20)),
                ('method', fields.CharField(max_length=40)),
                ('at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('actor_id', fields.IntField(null=True)),
                ('recorded_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={'table': 'contact_consents', 'app': 'hopthu', 'indexes': [Index(fields=['contact_id', 'kind', 'at'])], 'pk_attr': 'id', 'table_description': 'One consent decision: what (kind), granted or refused, when, how (method) and from which channel.'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='ContactAttribute',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('key', fields.CharField(unique=True, max_length=60)),
                ('label', fields.CharField(default='', max_length=200)),
                ('type', fields.CharField(max_length=10)),
                ('choices', fields.JSONField(default=list, encoder=JSON_DUMPS, decoder=loads)),
            ],
            options={'table': 'contact_attributes', 'app': 'hopthu', 'pk_attr': 'id', 'table_description': 'The type of a custom attribute, so values are validated the same way everywhere.'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='ContactMerge',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('survivor_id', fields.IntField()),
                ('merged_id', fields.IntField()),
                ('actor_id', fields.IntField(null=True)),
                ('snapshot', fields.JSONField(default=dict, encoder=JSON_DUMPS, decoder=loads)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ('undone_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('undone_by_id', fields.IntField(null=True)),
            ],
            options={'table': 'contact_merges', 'app': 'hopthu', 'indexes': [Index(fields=['survivor_id']), Index(fields=['merged_id'])], 'pk_attr': 'id', 'table_description': 'Who merged which profile into which, with the state needed to undo it exactly.'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='ContactSuggestion',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('contact', fields.ForeignKeyField('hopthu.Contact', source_field='contact_id', db_constraint=True, to_field='id', related_name='suggestions', on_delete=OnDelete.CASCADE)),
                ('kind', fields.CharField(max_length=10)),
                ('value', fields.TextField(unique=False)),
                ('normalized', fields.CharField(max_length=255)),
                ('message_id', fields.IntField(null=True)),
                ('conversation_id', fields.IntField(null=True)),
                ('given_by_customer', fields.BooleanField(default=False)),
                ('status', fields.CharField(default='pending', max_length=10)),
                ('decided_by_id', fields.IntField(null=True)),
                ('decided_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={'table': 'contact_suggestions', 'app': 'hopthu', 'unique_together': (('contact', 'kind', 'normalized'),), 'pk_attr': 'id', 'table_description': 'A phone, e-mail or address found in a chat, offered on the profile until an agent accepts or rejects it.'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='DuplicateDismissal',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('low_id', fields.IntField()),
                ('high_id', fields.IntField()),
                ('actor_id', fields.IntField(null=True)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={'table': 'contact_duplicate_dismissals', 'app': 'hopthu', 'unique_together': (('low_id', 'high_id'),), 'pk_attr': 'id', 'table_description': 'A pair a supervisor said is not the same person: never suggested again.'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='Order',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('contact', fields.ForeignKeyField('hopthu.Contact', source_field='contact_id', db_constraint=True, to_field='id', related_name='orders', on_delete=OnDelete.CASCADE)),
                ('conversation_id', fields.IntField(null=True)),
                ('channel', fields.CharField(null=True, max_length=20)),
                ('status', fields.CharField(default='draft', max_length=12)),
                ('items', fields.JSONField(default=list, encoder=JSON_DUMPS, decoder=loads)),
                ('total', fields.BigIntField(default=0)),
                ('shipping_address', fields.TextField(null=True, unique=False)),
                ('phone', fields.CharField(null=True, max_length=32)),
                ('note', fields.TextField(default='', unique=False)),
                ('source', fields.CharField(default='agent', max_length=12)),
                ('external_id', fields.CharField(null=True, max_length=128)),
                ('created_by_id', fields.IntField(null=True)),
                ('ordered_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ('updated_at', fields.DatetimeField(auto_now=True, auto_now_add=False)),
            ],
            options={'table': 'orders', 'app': 'hopthu', 'unique_together': (('source', 'external_id'),), 'indexes': [Index(fields=['contact_id', 'ordered_at']), Index(fields=['ordered_at'])], 'pk_attr': 'id', 'table_description': 'A purchase: drafted from a conversation, entered by an agent or imported from a POS / shop system.'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='Segment',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('name', fields.CharField(max_length=200)),
                ('rules', fields.JSONField(default=dict, encoder=JSON_DUMPS, decoder=loads)),
                ('created_by_id', fields.IntField(null=True)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={'table': 'segments', 'app': 'hopthu', 'pk_attr': 'id', 'table_description': 'A saved dynamic segment: rules evaluated on demand, usable as a contact and a conversation filter.'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='WebhookEndpoint',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('url', fields.TextField(unique=False)),
                ('secret', fields.CharField(max_length=128)),
                ('events', fields.JSONField(default=list, encoder=JSON_DUMPS, decoder=loads)),
                ('active', fields.BooleanField(default=True)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={'table': 'integration_webhooks', 'app': 'hopthu', 'pk_attr': 'id', 'table_description': "An outgoing webhook: events are POSTed signed with the endpoint's secret."},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='WebhookDelivery',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('endpoint', fields.ForeignKeyField('hopthu.WebhookEndpoint', source_field='endpoint_id', db_constraint=True, to_field='id', related_name='deliveries', on_delete=OnDelete.CASCADE)),
                ('event', fields.CharField(max_length=40)),
                ('payload', fields.JSONField(encoder=JSON_DUMPS, decoder=loads)),
                ('state', fields.CharField(default='pending', max_length=10)),
                ('attempts', fields.IntField(default=0)),
                ('next_attempt_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('last_status', fields.IntField(null=True)),
                ('last_error', fields.TextField(null=True, unique=False)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ('delivered_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'integration_deliveries', 'app': 'hopthu', 'indexes': [Index(fields=['state', 'next_attempt_at'])], 'pk_attr': 'id', 'table_description': 'One event for one endpoint: the delivery log, retried with backoff until delivered or given up.'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='ZaloToken',
            fields=[
                ('inbox', fields.OneToOneField('hopthu.Inbox', source_field='inbox_id', primary_key=True, db_index=True, db_constraint=True, to_field='id', related_name='zalo_token', on_delete=OnDelete.CASCADE)),
                ('access_token', fields.TextField(unique=False)),
                ('refresh_token', fields.TextField(unique=False)),
                ('expires_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('refresh_lease_until', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('refreshed_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'zalo_tokens', 'app': 'hopthu', 'pk_attr': 'inbox_id', 'table_description': "The OA's current token pair. Zalo refresh tokens work once: the row changes only by compare-and-swap on"},
            bases=['Model'],
        ),
        ops.AddField(
            model_name='Contact',
            name='addresses',
            field=fields.JSONField(default=list, encoder=JSON_DUMPS, decoder=loads),
        ),
        ops.AddField(
            model_name='Contact',
            name='attributes',
            field=fields.JSONField(default=dict, encoder=JSON_DUMPS, decoder=loads),
        ),
        ops.AddField(
            model_name='Contact',
            name='birthday',
            field=fields.DateField(null=True),
        ),
        ops.AddField(
            model_name='Contact',
            name='city',
            field=fields.CharField(null=True, max_length=100),
        ),
        ops.AddField(
            model_name='Contact',
            name='do_not_store',
            field=fields.BooleanField(default=False),
        ),
        ops.AddField(
            model_name='Contact',
            name='emails',
            field=fields.JSONField(default=list, encoder=JSON_DUMPS, decoder=loads),
        ),
        ops.AddField(
            model_name='Contact',
            name='erased_at',
            field=fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
        ),
        ops.AddField(
            model_name='Contact',
            name='gender',
            field=fields.CharField(null=True, max_length=10),
        ),
        ops.AddField(
            model_name='Contact',
            name='merged_into_id',
            field=fields.IntField(null=True),
        ),
        ops.AddField(
            model_name='Contact',
            name='notes',
            field=fields.TextField(default='', unique=False),
        ),
        ops.AddField(
            model_name='Contact',
            name='phones',
            field=fields.JSONField(default=list, encoder=JSON_DUMPS, decoder=loads),
        ),
        ops.AddField(
            model_name='Contact',
            name='source',
            field=fields.JSONField(default=dict, encoder=JSON_DUMPS, decoder=loads),
        ),
        ops.AddField(
            model_name='Contact',
            name='tags',
            field=fields.JSONField(default=list, encoder=JSON_DUMPS, decoder=loads),
        ),
        ops.AddField(
            model_name='Inbox',
            name='state',
            field=fields.CharField(default='active', max_length=20),
        ),
        ops.AddField(
            model_name='Inbox',
            name='state_reason',
            field=fields.TextField(null=True, unique=False),
        ),
        ops.AddField(
            model_name='Message',
            name='edit_history',
            field=fields.JSONField(null=True, encoder=JSON_DUMPS, decoder=loads),
        ),
        ops.AddField(
            model_name='Message',
            name='edited_at',
            field=fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
        ),
        ops.AddField(
            model_name='Message',
            name='removed_at',
            field=fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
        ),
    ]
