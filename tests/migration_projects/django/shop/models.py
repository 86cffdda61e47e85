from django.db import models


class Order(models.Model):
    customer_id = models.IntegerField()
    total = models.IntegerField()

    class Meta:
        db_table = "orders"
        indexes = [models.Index(fields=["customer_id"], name="orders_customer_idx")]
