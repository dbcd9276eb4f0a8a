from tortoise import migrations
from tortoise.migrations import operations as ops

class Migration(migrations.Migration):
    dependencies = [('hopthu', '0004_contacts_consent')]

    initial = False

    operations = [
        ops.AlterModelOptions(
            name='ZaloToken',
            options={'table': 'zalo_tokens', 'app': 'hopthu', 'pk_attr': 'inbox_id', 'table_description': "The OA's current token pair. Zalo refresh tokens work once: the row changes only by compare-and-swap on"},
        ),
    ]
