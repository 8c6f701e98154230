"""Calls: the idempotent call writer, the call log's search and export, what the tracker reports.

- ``snapshot``: CallData, LegData, RecordingRef (plain data; the tracker builds them)
- ``models``: Call, CallLeg, Recording
- ``services``: record_call(s), export_calls, get_call, call_to_dict, call_attempts
- ``log``: CallLogFilter, call_log_page, iter_call_log (filters and keyset pages)
"""
