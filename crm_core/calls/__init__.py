"""Calls: the idempotent call writer, the call log export and what the tracker reports.

- ``snapshot``: CallData, LegData, RecordingRef (plain data; the tracker builds them)
- ``models``: Call, CallLeg, Recording
- ``services``: record_call(s), export_calls, get_call, call_to_dict
"""
