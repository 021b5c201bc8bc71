"""An API with a route whose handler lacks its path parameter: refused at boot."""

from meltemi import API

api = API(docs_url=None)


@api.get("/x/{missing}")
def handler():
    return {}
