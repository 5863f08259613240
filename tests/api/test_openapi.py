"""The OpenAPI document at /schema describes the request body, the answers and the auth."""

from __future__ import annotations

from litestar.testing import AsyncTestClient


async def test_openapi_describes_post_events(http: AsyncTestClient) -> None:
    doc = (await http.get("/schema/openapi.json")).json()
    operation = doc["paths"]["/v1/events"]["post"]
    one, batch = operation["requestBody"]["content"]["application/json"]["schema"]["oneOf"]
    assert one["discriminator"]["propertyName"] == "type"
    assert batch["maxItems"] == 1000 and batch["minItems"] == 1
    schemas = doc["components"]["schemas"]
    for ref in one["discriminator"]["mapping"].values():
        assert ref.removeprefix("#/components/schemas/") in schemas
    assert schemas["Discount"]["properties"]["value"]["anyOf"][1] == {"type": "number"}
    assert set(operation["responses"]) >= {"200", "207", "400", "401", "409", "413", "422",
                                           "429", "503"}
    assert operation["security"] == [{"BearerToken": []}]
    assert doc["components"]["securitySchemes"]["BearerToken"]["scheme"] == "bearer"
    assert (await http.get("/schema")).status_code == 200
