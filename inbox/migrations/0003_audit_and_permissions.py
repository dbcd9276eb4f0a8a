from tortoise import migrations
from tortoise.migrations import operations as ops
from orjson import loads
from tortoise.fields.base import OnDelete
from tortoise.fields.data import JSON_DUMPS
from tortoise import fields
from tortoise.indexes import Index

class Migration(migrations.Migration):
    dependencies = [('hopthu', '0002_search_index')]

    initial = False

    operations = [
        ops.CreateModel(
            name='AuditEntry',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('action', fields.CharField(max_length=60)),
                ('actor', fields.ForeignKeyField('hopthu.User', source_field='actor_id', null=True, db_constraint=True, to_field='id', related_name='audit_entries', on_delete=OnDelete.SET_NULL)),
                ('target_type', fields.CharField(null=True, max_length=40)),
                ('target_id', fields.CharField(null=True, max_length=64)),
                ('data', fields.JSONField(default=dict, encoder=JSON_DUMPS, decoder=loads)),
                ('ip', fields.CharField(null=True, max_length=64)),
                ('occurred_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={'table': 'audit_log', 'app': 'hopthu', 'indexes': [Index(fields=['action', 'occurred_at'])], 'pk_attr': 'id', 'table_description': 'Append-only record of sensitive actions: who did what to which thing. Never holds personal data.'},
            bases=['Model'],
        ),
        ops.AddField(
            model_name='User',
            name='permissions',
            field=fields.JSONField(default=list, encoder=JSON_DUMPS, decoder=loads),
        ),
    ]
