"""gql 4 (Python) against a live Polyport server (issue 4, item 8).

Over HTTP (AIOHTTPTransport): register, login, create and publish a post, read pages and the
contract's error extensions. Over the legacy `graphql-ws` subprotocol (WebsocketsTransport):
credentials in connection_init, live events from a subscription.

Usage: python clients/python/graphql_clients.py http://127.0.0.1:PORT
"""

import asyncio
import sys
import time

from gql import Client, gql
from gql.transport.aiohttp import AIOHTTPTransport
from gql.transport.exceptions import TransportQueryError
from gql.transport.websockets import WebsocketsTransport

PASSWORD = "correct horse battery"


def http(base, token=None):
    headers = {"authorization": f"Bearer {token}"} if token else {}
    return Client(transport=AIOHTTPTransport(url=f"{base}/graphql", headers=headers), fetch_schema_from_transport=False)


async def main(base):
    email = f"gql-py-{int(time.time() * 1000)}@example.com"
    async with http(base) as s:
        user = await s.execute(
            gql("mutation($i: RegisterInput!) { register(input: $i) { id name } }"),
            variable_values={"i": {"email": email, "name": "Grace", "password": PASSWORD}},
        )
        login = await s.execute(
            gql("mutation($i: LoginInput!) { login(input: $i) { accessToken tokenType } }"),
            variable_values={"i": {"email": email, "password": PASSWORD}},
        )
        assert login["login"]["tokenType"] == "Bearer"
        try:
            await s.execute(gql("mutation { createPost(input: {title: \"x\"}) { id } }"))
            raise AssertionError("anonymous createPost must fail")
        except TransportQueryError as e:
            assert e.errors[0]["extensions"]["code"] == "UNAUTHENTICATED", e.errors
            assert e.errors[0]["extensions"]["requestId"], e.errors
    token = login["login"]["accessToken"]
    print("gql HTTP: register, login, UNAUTHENTICATED extensions ok")

    ws = WebsocketsTransport(
        url=base.replace("http", "ws", 1) + "/graphql/ws",
        init_payload={"authorization": f"Bearer {token}"},
        subprotocols=["graphql-ws"],  # the legacy (Apollo) protocol
    )
    title = f"py-live-{int(time.time() * 1000)}"
    async with Client(transport=ws, fetch_schema_from_transport=False) as live:
        sub = gql("subscription { postEvents { type post { title status author { name } } } }")
        events = live.subscribe(sub)

        async def first_event():
            async for e in events:
                if e["postEvents"]["post"]["title"] == title:
                    return e

        waiter = asyncio.create_task(first_event())
        await asyncio.sleep(0.3)
        async with http(base, token) as s:
            created = await s.execute(
                gql("mutation($i: CreatePostInput!) { createPost(input: $i) { id status } }"),
                variable_values={"i": {"title": title, "tags": ["py"]}},
            )
            assert created["createPost"]["status"] == "DRAFT"
            page = await s.execute(gql("{ posts(first: 5, filter: {status: DRAFT}) { edges { node { title author { name } } } } }"))
            assert any(e["node"]["title"] == title for e in page["posts"]["edges"]), page
        event = await asyncio.wait_for(waiter, 10)
        assert event["postEvents"]["type"] == "post.created", event
        assert event["postEvents"]["post"]["author"]["name"] == "Grace", event
    print(f"gql legacy graphql-ws: live event for user {user['register']['id']} ok")
    print("graphql clients (Python): ok")


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1].rstrip("/")))
