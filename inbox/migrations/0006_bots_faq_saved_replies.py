from tortoise import migrations
from tortoise.migrations import operations as ops
from orjson import loads
from tortoise.fields.base import OnDelete
from tortoise.fields.data import JSON_DUMPS
from tortoise import fields

class Migration(migrations.Migration):
    dependencies = [('hopthu', '0005_channels_edits_zalo_tokens')]

    initial = False

    operations = [
        ops.CreateModel(
            name='BotSession',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('conversation', fields.OneToOneField('hopthu.Conversation', source_field='conversation_id', db_constraint=True, to_field='id', related_name='bot_session', on_delete=OnDelete.CASCADE)),
                ('state', fields.CharField(default='bot', max_length=10)),
                ('handoff_reason', fields.CharField(null=True, max_length=40)),
                ('low_confidence_streak', fields.IntField(default=0)),
                ('answers', fields.IntField(default=0)),
                ('recent_replies', fields.JSONField(default=list, encoder=JSON_DUMPS, decoder=loads)),
                ('welcomed', fields.BooleanField(default=False)),
                ('away_sent_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('updated_at', fields.DatetimeField(auto_now=True, auto_now_add=False)),
            ],
            options={'table': 'bot_sessions', 'app': 'hopthu', 'pk_attr': 'id', 'table_description': "The bot's hold on one conversation: answering, or handed to humans (and why)."},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='FaqEntry',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('inbox', fields.ForeignKeyField('hopthu.Inbox', source_field='inbox_id', db_constraint=True, to_field='id', related_name='faq_entries', on_delete=OnDelete.CASCADE)),
                ('intent', fields.CharField(null=True, max_length=40)),
                ('questions', fields.JSONField(default=list, encoder=JSON_DUMPS, decoder=loads)),
                ('answer', fields.TextField(unique=False)),
                ('enabled', fields.BooleanField(default=True)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ('updated_at', fields.DatetimeField(auto_now=True, auto_now_add=False)),
            ],
            options={'table': 'faq_entries', 'app': 'hopthu', 'pk_attr': 'id', 'table_description': "A question/answer pair the FAQ bot answers from, with the admins' phrasings of the question."},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='SavedReply',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('inbox', fields.ForeignKeyField('hopthu.Inbox', source_field='inbox_id', null=True, db_constraint=True, to_field='id', related_name='saved_replies', on_delete=OnDelete.CASCADE)),
                ('shortcut', fields.CharField(max_length=40)),
                ('title', fields.CharField(default='', max_length=200)),
                ('text', fields.TextField(unique=False)),
                ('created_by', fields.ForeignKeyField('hopthu.User', source_field='created_by_id', null=True, db_constraint=True, to_field='id', related_name='saved_replies', on_delete=OnDelete.SET_NULL)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ('updated_at', fields.DatetimeField(auto_now=True, auto_now_add=False)),
            ],
            options={'table': 'saved_replies', 'app': 'hopthu', 'unique_together': (('inbox', 'shortcut'),), 'pk_attr': 'id', 'table_description': 'A canned answer agents insert with `/shortcut`, global when `inbox` is null.'},
            bases=['Model'],
        ),
    ]
