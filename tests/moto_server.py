"""Starts moto's server (as `moto_server` does) with its DynamoDB requests served one at a time.

Why: moto 5's TransactWriteItems copies every table the transaction touches before it starts
and, when the transaction is cancelled (a false condition), puts those copies back
(moto/dynamodb/models/__init__.py, `transact_write_items`: `original_table_state`). Its server
handles requests on many threads, so a cancelled transaction also erases whatever other requests
wrote to those tables meanwhile: a committed reservation, a processed-message marker, an outbox
row. Real DynamoDB never loses a committed write to another request's cancellation (each
transaction is isolated and atomic; see "Isolation levels for DynamoDB transactions" in the
DynamoDB developer guide). Serving moto's DynamoDB requests one at a time restores that; the
other services (SQS long polls among them) stay concurrent.
"""

import sys
import threading

from moto.dynamodb.responses import DynamoHandler
from moto.server import main

_one_at_a_time = threading.Lock()
_call_action = DynamoHandler.call_action


def _serialised_call_action(self):
    with _one_at_a_time:
        return _call_action(self)


DynamoHandler.call_action = _serialised_call_action

if __name__ == "__main__":
    sys.exit(main())
