from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise import fields
from tortoise.indexes import Index

class Migration(migrations.Migration):
    dependencies = [('hopthu', '0012_contacts_scores')]

    initial = False

    operations = [
        ops.CreateModel(
            name='MetricDigest',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('bucket', fields.CharField(max_length=10)),
                ('day', fields.CharField(max_length=10)),
                ('inbox_id', fields.IntField()),
                ('channel', fields.CharField(max_length=20)),
                ('team_id', fields.IntField(null=True)),
                ('agent_id', fields.IntField(null=True)),
                ('kind', fields.CharField(max_length=20)),
                ('n', fields.IntField()),
                ('vals', fields.TextField(unique=False)),
                ('held', fields.TextField(unique=False)),
                ('vals_bh', fields.TextField(unique=False)),
                ('held_bh', fields.TextField(unique=False)),
                ('convs', fields.TextField(unique=False)),
            ],
            options={'table': 'metric_digests', 'app': 'hopthu', 'indexes': [Index(fields=['bucket'])], 'pk_attr': 'id', 'table_description': '`metric_facts` of one UTC day, bundled per (local day, inbox, channel, team, agent, kind): reports read a'},
            bases=['Model'],
        ),
    ]
