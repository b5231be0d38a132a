from django.db import models


class Order(models.Model):
    customer = models.CharField(max_length=100)
    quantity = models.PositiveIntegerField()

    def __str__(self) -> str:
        return f"{self.quantity} for {self.customer}"
