from django.db import models


class Item(models.Model):
    name = models.CharField(max_length=100)
    price = models.FloatField()
    tags = models.JSONField(default=list)

    class Meta:
        app_label = "apiproject"
