"""meltemi.testing.TestClient inside Django's TestCase: the handler runs in
the test's thread, on the test's database connection, inside its transaction."""

import pytest
from conftest import API_NOT_APPLICABLE

if API_NOT_APPLICABLE:
    pytest.skip(API_NOT_APPLICABLE, allow_module_level=True)

from apiclient import client, django_ready  # noqa: E402

django_ready()

from apiproject.models import Item  # noqa: E402
from django.test import TestCase  # noqa: E402  (after settings are configured)


class HandlerSeesTheTestTransaction(TestCase):
    def test_row_created_by_the_test_is_read_by_the_handler(self):
        row = Item.objects.create(name="only-in-this-transaction", price=3)
        r = client().get(f"/api/items/{row.id}")
        self.assertEqual(r.status_code, 200)
        self.assertEqual(r.json()["name"], "only-in-this-transaction")

    def test_row_written_by_the_handler_is_seen_by_the_test(self):
        r = client().post("/api/items", json={"name": "written-by-handler", "price": 2})
        self.assertEqual(r.status_code, 201)
        self.assertTrue(Item.objects.filter(name="written-by-handler").exists())

    def test_listing_sees_only_this_transaction(self):
        Item.objects.create(name="a", price=1)
        Item.objects.create(name="b", price=1)
        names = [i["name"] for i in client().get("/api/items?limit=100").json()]
        self.assertIn("a", names)
        self.assertIn("b", names)


def test_the_transactions_were_rolled_back():
    """Runs after the TestCase above: nothing it (or its handlers) wrote is left."""
    assert not Item.objects.filter(name__in=["only-in-this-transaction", "written-by-handler"]).exists()
