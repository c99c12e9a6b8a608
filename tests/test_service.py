"""The dispatch service: one process per run asking a remote model for every pytest process.

Real service processes, real Unix sockets, real HTTP to a loopback OpenAI-compatible server.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Callable, Iterator

import pytest
from loopback import LoopbackServer, ok, sleep
from suitekit import SENTENCES, last_summary, make_project

from ahelm.config import ModelConfig, load_model_config
from ahelm.core import AudioClip, Request
from ahelm.models import build_model
from ahelm.service import ServiceError, ServiceProcess, wanted
from ahelm.service.client import ServiceClient

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="Unix sockets")


def _config(folder: Path, server: LoopbackServer, *, concurrency: int = 4,
            model: str = "loop") -> ModelConfig:
    path = folder / f"{model}.toml"
    path.write_text(textwrap.dedent(f"""\
        provider = "openai-chat"
        model = "{model}"
        base_url = "{server.base_url}"
        max_concurrency = {concurrency}
        max_retries = 0
        """))
    return load_model_config(str(path), folder)


def _requests(folder: Path, count: int) -> list[Request]:
    clip = folder / "tone.wav"
    if not clip.exists():
        import numpy as np
        import soundfile as sf

        sf.write(clip, 0.2 * np.sin(np.linspace(0, 600, 8000)), 16000)
    audio = AudioClip(clip, "")
    return [Request(f"i{n:02d}", f"say {n}", audio, max_tokens=10) for n in range(count)]


StartService = Callable[..., ServiceProcess]


@pytest.fixture
def service_for(tmp_path: Path) -> Iterator[StartService]:
    """Starts services on a loopback model; stops whatever a test left running."""
    started: list[ServiceProcess] = []

    def start(config: ModelConfig, run_id: str = "run1") -> ServiceProcess:
        service = ServiceProcess.start(config, tmp_path / "cache.sqlite3", run_id,
                                       refresh=False, wav_cache_dir=None, wav_cache_bytes=0)
        started.append(service)
        return service

    yield start
    for service in started:
        service.stop()


def _client(service: ServiceProcess, config: ModelConfig, folder: Path,
            run_id: str = "run1") -> ServiceClient:
    return ServiceClient(build_model(config), service.folder, folder / "cache.sqlite3", run_id,
                         alive=service.alive)


def test_two_clients_share_one_concurrency_budget_and_each_request_is_asked_once(
    tmp_path: Path, service_for: StartService
) -> None:
    with LoopbackServer(lambda r: sleep(0.1, ok(f"heard {r.prompt}"))) as server:
        config = _config(tmp_path, server, concurrency=4)
        service = service_for(config)
        requests = _requests(tmp_path, 24)
        first, second = _client(service, config, tmp_path), _client(service, config, tmp_path)
        first.prefetch(requests)
        second.prefetch(requests[12:] + requests[:12])  # a second xdist worker's rotated plan
        answers = [first.answer(r) for r in requests] + [second.answer(r) for r in requests]
        counts = [first.snapshot(), second.snapshot()]
        first.close()
        second.close()
        service.stop()
        assert len(server.requests) == 24
        assert server.max_in_flight == 4
    assert all(a.response is not None and a.response.text.startswith("heard") for a in answers)
    assert answers[3].response is not None and "3" in answers[3].response.text
    # Each model call is counted by exactly one of the clients that received its answer.
    assert sum(c["model_calls"] for c in counts) == 24
    assert sum(c["errors"] + c["cache_hits"] for c in counts) == 0
    assert not service.folder.exists()


def test_plans_are_served_in_turn_so_no_worker_waits_behind_another(
    tmp_path: Path, service_for: StartService
) -> None:
    with LoopbackServer(lambda r: sleep(0.05, ok("x"))) as server:
        config = _config(tmp_path, server, concurrency=2)
        service = service_for(config)
        requests = _requests(tmp_path, 20)
        first, second = _client(service, config, tmp_path), _client(service, config, tmp_path)
        first.prefetch(requests[:10])
        second.prefetch(requests[10:])
        for request in requests:
            first.answer(request) if request in requests[:10] else second.answer(request)
        order = [r.prompt for r in server.requests]
        first.close()
        second.close()
    # Both plans advance together: each half of the arrivals holds about half of each plan.
    early = order[:10]
    assert 3 <= sum(p in {r.prompt for r in requests[:10]} for p in early) <= 7


def test_an_ask_goes_ahead_of_every_plan(tmp_path: Path, service_for: StartService) -> None:
    with LoopbackServer(lambda r: sleep(0.05, ok("x"))) as server:
        config = _config(tmp_path, server, concurrency=1)
        service = service_for(config)
        requests = _requests(tmp_path, 12)
        client = _client(service, config, tmp_path)
        client.prefetch(requests[:10])
        client.answer(requests[11])  # not planned: asked, and answered before most of the plan
        position = [r.prompt for r in server.requests].index(requests[11].prompt)
        client.close()
    assert position <= 2


def test_answers_in_the_cache_are_read_by_the_client_and_never_travel(
    tmp_path: Path, service_for: StartService
) -> None:
    with LoopbackServer(lambda r: ok(f"heard {r.prompt}")) as server:
        config = _config(tmp_path, server)
        requests = _requests(tmp_path, 6)
        service = service_for(config, "run1")
        client = _client(service, config, tmp_path, "run1")
        client.prefetch(requests)
        first = [client.answer(r) for r in requests]
        client.close()
        service.stop()

        rerun = service_for(config, "run2")
        again = _client(rerun, config, tmp_path, "run2")
        again.prefetch(requests)
        second = [again.answer(r) for r in requests]
        snapshot = again.snapshot()
        again.close()
        assert len(server.requests) == 6
    assert [a.response for a in second] == [a.response for a in first]
    assert all(a.cached for a in second) and not any(a.cached for a in first)
    assert snapshot["cache_hits"] == 6 and snapshot["model_calls"] == 0


def test_transport_errors_come_back_as_errors_of_their_instance(
    tmp_path: Path, service_for: StartService
) -> None:
    with LoopbackServer(lambda r: ok("fine")) as server:
        from loopback import status

        server.script(status(400))
        config = _config(tmp_path, server, concurrency=1)
        service = service_for(config)
        client = _client(service, config, tmp_path)
        bad, good = _requests(tmp_path, 2)
        failed = client.answer(bad)
        fine = client.answer(good)
        counts = client.snapshot()
        client.close()
    assert failed.response is None and failed.error is not None
    assert failed.error.kind == "transport" and "400" in failed.error.message
    assert fine.response is not None and fine.response.text == "fine"
    assert counts["errors"] == 1 and counts["model_calls"] == 1


def test_a_client_of_another_model_is_refused(tmp_path: Path, service_for: StartService) -> None:
    with LoopbackServer() as server:
        service = service_for(_config(tmp_path, server, model="one"))
        other = _config(tmp_path, server, model="two")
        with pytest.raises(ServiceError, match="serves model .*one.*not .*two"):
            _client(service, other, tmp_path)


def test_a_service_that_cannot_start_says_why(tmp_path: Path, service_for: StartService) -> None:
    broken = ModelConfig(name="broken", path=tmp_path / "broken.toml", provider="openai-chat",
                         settings={"model": "m", "base_url": "http://127.0.0.1:9/v1",
                                   "max_concurrency": 0}, gate_overrides={})
    service = service_for(broken)
    with LoopbackServer() as server:
        model = build_model(_config(tmp_path, server))
    with pytest.raises(ServiceError, match="the dispatch service failed: .*max_concurrency"):
        ServiceClient(model, service.folder, tmp_path / "cache.sqlite3", "run1",
                      alive=service.alive)
    assert service.process.wait(timeout=10) == 1


def test_when_the_service_dies_waiting_tests_get_errors_that_say_so(
    tmp_path: Path, service_for: StartService
) -> None:
    with LoopbackServer(lambda r: sleep(5.0, ok("late"))) as server:
        config = _config(tmp_path, server, concurrency=2)
        service = service_for(config)
        client = _client(service, config, tmp_path)
        requests = _requests(tmp_path, 4)
        client.prefetch(requests)
        deadline = time.monotonic() + 10
        while not server.requests and time.monotonic() < deadline:
            time.sleep(0.01)
        service.process.kill()
        answers = [client.answer(r) for r in requests]
        client.close()
    assert all(a.response is None for a in answers)
    assert all("dispatch service stopped" in (a.error.message if a.error else "")
               for a in answers)
    assert "resume from the cache" in (answers[0].error.message if answers[0].error else "")


def test_the_service_ends_when_its_owner_dies(tmp_path: Path) -> None:
    """The owner holds the service's stdin: when it is SIGKILLed, the service stops by itself."""
    with LoopbackServer() as server:
        config = _config(tmp_path, server)
        owner = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""\
            import sys, time
            from pathlib import Path
            from ahelm.config import load_model_config
            from ahelm.service import ServiceProcess
            config = load_model_config({str(config.path)!r}, Path({str(tmp_path)!r}))
            service = ServiceProcess.start(config, Path({str(tmp_path / "c.sqlite3")!r}), "r",
                                           refresh=False, wav_cache_dir=None, wav_cache_bytes=0)
            print(service.process.pid, flush=True)
            time.sleep(60)
            """)], stdout=subprocess.PIPE, text=True)
        assert owner.stdout is not None
        pid = int(owner.stdout.readline())
        assert _running(pid)
        owner.send_signal(signal.SIGKILL)
        owner.wait()
        deadline = time.monotonic() + 10
        while _running(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not _running(pid)


def _running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_which_models_get_a_service(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with LoopbackServer() as server:
        remote = _config(tmp_path, server)
    local = ModelConfig(name="ref", path=tmp_path / "ref.toml", provider="reference",
                        settings={}, gate_overrides={})
    monkeypatch.delenv("AHELM_DISPATCH", raising=False)
    assert wanted(remote) and not wanted(local)
    monkeypatch.setenv("AHELM_DISPATCH", "thread")
    assert not wanted(remote)
    monkeypatch.setenv("AHELM_DISPATCH", "service")
    assert wanted(local)
    monkeypatch.setenv("AHELM_DISPATCH", "sideways")
    with pytest.raises(ServiceError, match="AHELM_DISPATCH='sideways'"):
        wanted(remote)


# -- through pytest ----------------------------------------------------------------------------


def _openai_project(pytester: pytest.Pytester, server: LoopbackServer, concurrency: int) -> None:
    make_project(pytester, sentences=12)
    (pytester.path / "model_configs" / "http.toml").write_text(textwrap.dedent(f"""\
        provider = "openai-chat"
        model = "loopback-audio"
        base_url = "{server.base_url}"
        max_concurrency = {concurrency}
        """))


def test_under_xdist_the_run_has_one_budget_and_asks_each_request_once(
    pytester: pytest.Pytester,
) -> None:
    with LoopbackServer(lambda r: sleep(0.1, ok(SENTENCES[0]))) as server:
        _openai_project(pytester, server, concurrency=6)
        result = pytester.runpytest_subprocess("--model=http", "-n", "2", "-p", "no:randomly")
        assert len(server.requests) == 24
        assert server.max_in_flight == 6  # the model's budget, not 3 per worker
    result.assert_outcomes(passed=2 + 1, failed=22 + 1)
    summary = last_summary(pytester)
    assert summary["dispatch"]["model_calls"] == 24
    assert summary["dispatch"]["errors"] == 0


@pytest.mark.parametrize("workers", [[], ["-n", "2"]], ids=["one process", "xdist"])
def test_the_progress_line_counts_the_requests_the_service_answered(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, workers: list[str]
) -> None:
    """One process counts what its client planned and received; the xdist controller, which
    reads no answers, asks the service."""
    monkeypatch.setenv("AHELM_PROGRESS", "1")
    monkeypatch.setenv("AHELM_PROGRESS_INTERVAL", "0")
    with LoopbackServer(lambda r: sleep(0.05, ok(SENTENCES[0]))) as server:
        _openai_project(pytester, server, concurrency=6)
        result = pytester.runpytest_subprocess("--model=http", "-p", "no:randomly", *workers)
    lines = [line for line in result.stdout.lines if line.startswith("ahelm: ")]
    assert lines and all(" requests answered " in line for line in lines), lines
    assert lines[-1].startswith("ahelm: 24/24 requests answered (100%)")
    assert lines[-1].endswith("· 0 answer errors · 26/26 tests done")
    answered = [int(line.split()[1].split("/")[0]) for line in lines]
    assert answered == sorted(answered)


def test_the_progress_probe_gives_up_at_once_when_the_service_is_gone(tmp_path: Path) -> None:
    from ahelm.service.client import ProgressProbe

    model = build_model(ModelConfig(
        name="http", path=tmp_path / "http.toml", provider="openai-chat",
        settings={"model": "m", "base_url": "http://127.0.0.1:9/v1"}, gate_overrides={}))
    probe = ProgressProbe(tmp_path, model, alive=lambda: False)
    started = time.monotonic()
    assert probe.counts() is None and probe.counts() is None
    assert time.monotonic() - started < 1.0


WORKER_PROBE = """\

import time as _time

import pytest as _pytest


@_pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config, items):
    if hasattr(config, "workerinput"):
        name = config.workerinput["workerid"]
        (config.rootpath / f"collected-{name}.txt").write_text(repr(_time.monotonic()))
"""


def test_under_xdist_the_controller_plans_before_the_workers_have_collected(
    pytester: pytest.Pytester,
) -> None:
    """The controller collects quietly before xdist starts the workers and hands the service
    the plan: the first request reaches the model before any worker has finished collecting
    (a worker's own plan leaves only at the end of its collection). Each request is asked once,
    and nothing of the controller's collection shows."""
    with LoopbackServer(lambda r: sleep(0.3, ok(SENTENCES[0]))) as server:
        _openai_project(pytester, server, concurrency=6)
        conftest = pytester.path / "conftest.py"
        conftest.write_text(conftest.read_text() + WORKER_PROBE)
        result = pytester.runpytest_subprocess("--model=http", "-n", "2", "-p", "no:randomly")
        first_request = min(request.arrived_at for request in server.requests)
        assert len(server.requests) == 24
    collected = [float(path.read_text()) for path in pytester.path.glob("collected-*.txt")]
    assert len(collected) == 2
    assert first_request < min(collected)
    result.assert_outcomes(passed=2 + 1, failed=22 + 1)
    assert not re.search(r"collected \d+ item", result.stdout.str())
    assert last_summary(pytester)["dispatch"]["model_calls"] == 24


@pytest.mark.parametrize("selection", ["keyword", "conftest"])
def test_the_controllers_plan_keeps_to_the_selection(
    pytester: pytest.Pytester, selection: str
) -> None:
    """Tests that -k or a plugin deselects are never asked for, even by the plan the
    controller makes before its workers start."""
    with LoopbackServer(lambda r: ok(SENTENCES[0])) as server:
        _openai_project(pytester, server, concurrency=4)
        args = ["--model=http", "-n", "2", "-p", "no:randomly"]
        if selection == "keyword":
            args += ["-k", "no_test_is_called_this"]
        else:
            conftest = pytester.path / "conftest.py"
            conftest.write_text(conftest.read_text() + textwrap.dedent("""\

                def pytest_collection_modifyitems(config, items):
                    config.hook.pytest_deselected(items=list(items))
                    items[:] = []
                """))
        result = pytester.runpytest_subprocess(*args)
        assert server.requests == []
    assert result.ret == pytest.ExitCode.NO_TESTS_COLLECTED


def test_a_collection_error_is_reported_once_and_the_workers_plan_as_before(
    pytester: pytest.Pytester,
) -> None:
    """The controller's quiet collection meets the broken module too: it reports nothing and
    plans nothing; the workers report the error (once) and plan and ask as usual."""
    with LoopbackServer(lambda r: ok(SENTENCES[0])) as server:
        _openai_project(pytester, server, concurrency=4)
        conftest = pytester.path / "conftest.py"
        conftest.write_text(conftest.read_text() + WORKER_PROBE)
        (pytester.path / "suites" / "test_broken.py").write_text("def test_x(:\n")
        result = pytester.runpytest_subprocess("--model=http", "-n", "2", "-p", "no:randomly")
        first_request = min(request.arrived_at for request in server.requests)
        assert len(server.requests) == 24
    output = result.stdout.str()
    assert output.count("ERROR collecting suites/test_broken.py") == 1
    assert not re.search(r"collected \d+ item", output)
    collected = [float(path.read_text()) for path in pytester.path.glob("collected-*.txt")]
    assert first_request > min(collected)
    assert last_summary(pytester)["dispatch"]["model_calls"] == 24


NICENESS_PROBE = """\

import os as _os


def pytest_unconfigure(config):
    name = config.workerinput["workerid"] if hasattr(config, "workerinput") else "main"
    (config.rootpath / f"nice-{name}.txt").write_text(str(_os.nice(0)))
"""


@pytest.mark.parametrize("setting, lowered", [(None, 19), ("2", 2), ("0", 0)])
def test_workers_of_a_remote_model_yield_the_cpu_to_the_service(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, setting: str | None, lowered: int
) -> None:
    """The workers lower their priority by AHELM_NICE (default 19) so that the service's loop
    runs first when they compete; the process that started pytest keeps its own."""
    if setting is None:
        monkeypatch.delenv("AHELM_NICE", raising=False)
    else:
        monkeypatch.setenv("AHELM_NICE", setting)
    base = os.nice(0)
    with LoopbackServer(lambda r: ok(SENTENCES[0])) as server:
        _openai_project(pytester, server, concurrency=4)
        conftest = pytester.path / "conftest.py"
        conftest.write_text(conftest.read_text() + NICENESS_PROBE)
        pytester.runpytest_subprocess("--model=http", "-n", "2", "-p", "no:randomly")
    seen = {path.stem: int(path.read_text()) for path in pytester.path.glob("nice-*.txt")}
    expected = min(base + lowered, 19)
    assert seen == {"nice-main": base, "nice-gw0": expected, "nice-gw1": expected}


def test_local_models_and_bad_settings_leave_the_priority_alone(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    make_project(pytester, sentences=2)
    conftest = pytester.path / "conftest.py"
    conftest.write_text(conftest.read_text() + NICENESS_PROBE)
    base = os.nice(0)
    pytester.runpytest_subprocess("--model=fake", "-n", "2", "-p", "no:randomly")
    seen = {path.stem: int(path.read_text()) for path in pytester.path.glob("nice-*.txt")}
    assert seen == {"nice-main": base, "nice-gw0": base, "nice-gw1": base}
    with LoopbackServer(lambda r: ok(SENTENCES[0])) as server:
        _openai_project(pytester, server, concurrency=4)
        monkeypatch.setenv("AHELM_NICE", "low")
        result = pytester.runpytest_subprocess("--model=http", "-n", "2")
        assert server.requests == []
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "ahelm: AHELM_NICE='low': expected a whole number" in result.stderr.str()


def test_a_killed_run_leaves_no_service_behind_and_resumes(pytester: pytest.Pytester) -> None:
    with LoopbackServer(lambda r: sleep(0.2, ok(SENTENCES[0]))) as server:
        _openai_project(pytester, server, concurrency=2)
        command = [sys.executable, "-m", "pytest", "--model=http", "-p", "no:cacheprovider",
                   "-p", "no:randomly"]
        run = subprocess.Popen(command, cwd=pytester.path, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 60
        while len(server.requests) < 6 and time.monotonic() < deadline:
            time.sleep(0.02)
        services = _children(run.pid)
        assert services, "the run should have started its dispatch service"
        os.kill(run.pid, signal.SIGKILL)  # the pytest process only, not its process group
        run.wait()
        deadline = time.monotonic() + 10
        while any(_running(pid) for pid in services) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not any(_running(pid) for pid in services)
        asked = len(server.requests)
        assert asked < 24

        resumed = subprocess.run(command, cwd=pytester.path, capture_output=True, text=True)
        assert resumed.returncode == 1, resumed.stdout[-2000:]  # wrong answers fail the gate
        # Only what was missing (and at most the two in flight at the kill) is asked again.
        assert len(server.requests) <= 24 + 2
        summary = json.loads(next((pytester.path / "reports" / "runs").glob(
            "*/summary.json")).read_text())
        assert summary["counts"]["total"] == 24
        assert summary["dispatch"]["cache_hits"] >= asked - 2


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            command = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if int(stat[1]) == pid and b"ahelm.service.server" in command:
            found.append(int(entry.name))
    return found
