"""The bench's baseline endpoint: what accepting a command costs at the least.

Served only when `BENCH_BASELINE_ENDPOINT` is true (`make bench` sets it for its
own server). It runs the same authentication, parser and input serializer as
`place-order`, inserts one row and answers 202, so that the accept figure
compares our endpoint with the floor of a DRF view in the same server process.
The table `bench_baseline` is created by the bench (bench/common.py). It lives
in bench/, outside the production packages: config/urls.py imports it only when
the setting is on, and import-linter forbids the apps to import bench.
"""

from __future__ import annotations

import json

from django.db import connection
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from commands_app.serializers import PlaceOrderInput


class BaselineAcceptApi(APIView):
    """Validate a place-order body, insert one row, answer 202."""

    def post(self, request: Request) -> Response:
        serializer = PlaceOrderInput(data=request.data)
        serializer.is_valid(raise_exception=True)
        with connection.cursor() as cursor:
            cursor.execute(
                "INSERT INTO bench_baseline (body) VALUES (%s::jsonb) RETURNING id",
                [json.dumps(request.data)],
            )
            (row_id,) = cursor.fetchone()
        return Response({"id": row_id}, status=status.HTTP_202_ACCEPTED)
