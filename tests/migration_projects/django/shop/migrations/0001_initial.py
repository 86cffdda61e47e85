from django.db import migrations, models


class Migration(migrations.Migration):
    initial = True
    dependencies = []
    operations = [
        migrations.CreateModel(
            name="Order",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("customer_id", models.IntegerField()),
                ("total", models.IntegerField()),
            ],
            options={
                "db_table": "orders",
                "indexes": [models.Index(fields=["customer_id"], name="orders_customer_idx")],
            },
        ),
    ]
