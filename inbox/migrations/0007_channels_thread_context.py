from tortoise import migrations
from tortoise.migrations import operations as ops
from orjson import loads
from tortoise.fields.data import JSON_DUMPS
from tortoise import fields

class Migration(migrations.Migration):
    dependencies = [('hopthu', '0006_bots_faq_saved_replies')]

    initial = False

    operations = [
        ops.AddField(
            model_name='Conversation',
            name='thread_context',
            field=fields.JSONField(null=True, encoder=JSON_DUMPS, decoder=loads),
        ),
    ]
