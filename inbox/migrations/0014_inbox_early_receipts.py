from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise import fields
from tortoise.indexes import Index

class Migration(migrations.Migration):
    dependencies = [('hopthu', '0013_agents_metric_digests')]

    initial = False

    operations = [
        ops.CreateModel(
            name='EarlyReceipt',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('inbox_id', fields.IntField()),
                ('external_id', fields.CharField(max_length=255)),
                ('status', fields.CharField(max_length=10)),
                ('received_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={'table': 'early_receipts', 'app': 'hopthu', 'indexes': [Index(fields=['inbox_id', 'external_id']), Index(fields=['received_at'])], 'pk_attr': 'id', 'table_description': 'A platform\'s "received"/"seen" for message ids we do not know yet: Zalo may report on a reply before the'},
            bases=['Model'],
        ),
    ]
