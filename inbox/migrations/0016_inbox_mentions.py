from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise.fields.base import OnDelete
from tortoise import fields
from tortoise.indexes import Index

class Migration(migrations.Migration):
    dependencies = [('hopthu', '0015_conversation_receipt_watermarks')]

    initial = False

    operations = [
        ops.CreateModel(
            name='Mention',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('message', fields.ForeignKeyField('hopthu.Message', source_field='message_id', db_constraint=True, to_field='id', related_name='mentions', on_delete=OnDelete.CASCADE)),
                ('conversation', fields.ForeignKeyField('hopthu.Conversation', source_field='conversation_id', db_constraint=True, to_field='id', related_name='mentions', on_delete=OnDelete.CASCADE)),
                ('user', fields.ForeignKeyField('hopthu.User', source_field='user_id', db_constraint=True, to_field='id', related_name='mentions', on_delete=OnDelete.CASCADE)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('read_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'mentions', 'app': 'hopthu', 'unique_together': (('message', 'user'),), 'indexes': [Index(fields=['user_id', 'id']), Index(fields=['conversation_id', 'user_id'])], 'pk_attr': 'id', 'table_description': 'A colleague named in a private note (`@Name`): they are told, and it waits in their list until read.'},
            bases=['Model'],
        ),
    ]
