from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise import fields
from tortoise.indexes import Index

class Migration(migrations.Migration):
    dependencies = [('hopthu', '0011_search_tsvector')]

    initial = False

    operations = [
        ops.CreateModel(
            name='ContactScore',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('contact_id', fields.IntField(unique=True)),
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
            options={'table': 'contact_scores', 'app': 'hopthu', 'indexes': [Index(fields=['segment'])], 'pk_attr': 'id', 'table_description': 'The latest RFM scoring of a customer with orders (recomputed by `contacts.rfm.refresh`).'},
            bases=['Model'],
        ),
        ops.RemoveIndex(
            model_name='Order',
            name=None,
            fields=['contact_id', 'ordered_at'],
        ),
        ops.AddIndex(
            model_name='Order',
            index=Index(fields=['contact_id', 'ordered_at', 'status', 'total']),
        ),
        ops.DeleteModel(name='ContactRFM'),
    ]
