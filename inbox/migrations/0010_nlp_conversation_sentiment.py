from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise import fields

class Migration(migrations.Migration):
    dependencies = [('hopthu', '0009_contacts_rfm')]

    initial = False

    # Only the NLP field: the autodetector also proposed dropping and re-adding contact_rfm's primary key
    # (a spurious diff of `generated=False`), which would destroy data; left out on purpose.
    operations = [
        ops.AddField(
            model_name='Conversation',
            name='worst_sentiment',
            field=fields.CharField(null=True, max_length=10),
        ),
    ]
