"""The floor load benchmark's own arithmetic (bench/floor_load.py), without its set-up."""

from __future__ import annotations

from collections import Counter

from asterisk_conf.render import render_pbx_config
from bench.floor_load import floor, parse_metrics, pbx_config, total, visits_of


def test_each_calling_manager_has_a_phone_and_a_did_of_his_own() -> None:
    people = floor(500, 30)
    assert len({m.extension for m in people}) == 500
    calling = [m for m in people if m.did]
    assert [m.extension for m in calling] == [f"4{i:02d}" for i in range(1, 31)]
    assert len({m.caller for m in calling}) == 30
    config = pbx_config(people)
    config.validate()
    for m in calling:
        assert config.dids[m.did] == m.extension
    files = render_pbx_config(config)
    assert "[430](manager-phone)" in files["pjsip.conf"]
    assert "DID_74952220430 = 430" in files["extensions.conf"]
    assert not any(m.did or m.caller for m in people[30:]), "the others' phones never ring"


def test_page_views_follow_the_mix_and_open_only_his_own_clients() -> None:
    people = floor(50, 5)
    for i, m in enumerate(people):
        m.token, m.clients = f"token-{i}", [1000 + 2 * i, 1001 + 2 * i]
    owner = {m.token: m for m in people}
    visits = visits_of(people, 2000)
    kinds = Counter(kind for kind, _, _ in visits)
    assert 900 < kinds["client card"] < 1100 and 500 < kinds["call log"] < 700
    assert 300 < kinds["tasks"] < 500
    for kind, token, path in visits:
        if kind == "client card":
            assert int(path.rsplit("/", 1)[1]) in owner[token].clients
        else:
            assert path == {"call log": "/calls", "tasks": "/tasks"}[kind]


def test_metrics_are_read_by_name_and_labels() -> None:
    text = (
        "# HELP telecrm_http_request_duration_seconds HTTP request time\n"
        "# TYPE telecrm_http_request_duration_seconds histogram\n"
        'telecrm_http_request_duration_seconds_count{method="GET",route="/calls",status="2xx"} 7\n'
        'telecrm_http_request_duration_seconds_count{method="GET",route="/tasks",status="2xx"} 3\n'
        "# HELP telecrm_calls_in_progress Calls\n"
        "# TYPE telecrm_calls_in_progress gauge\n"
        'telecrm_calls_in_progress{pbx="main"} 30\n')
    samples = parse_metrics(text)
    assert total(samples, "telecrm_http_request_duration_seconds_count") == 10
    assert total(samples, "telecrm_http_request_duration_seconds_count", route="/calls") == 7
    assert total(samples, "telecrm_calls_in_progress", pbx="main") == 30
