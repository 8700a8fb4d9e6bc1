"""`pip install` of the built wheel is a working install: a fresh virtualenv, a config
outside the repository with nothing but settings, `mailcase serve`, and a customer's mail
answered from the templates inside the package."""

from __future__ import annotations

import os
import shutil
import smtplib
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from tests.service.test_serve import listening
from tests.support.mailsink import Sink, free_port
from tests.support.paths import ROOT
from tests.support.servers import mail, wait_for

SOURCES = ("pyproject.toml", "README.md", "mailcase", "templates")


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh virtualenv holding only the wheel built from this checkout; the
    dependencies come from the test environment's site-packages as a plain path (its
    editable install of mailcase stays out: .pth files there are not run)."""
    root = tmp_path_factory.mktemp("install")
    source = root / "source"
    for name in SOURCES:  # a copy, so the build leaves nothing in the checkout
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, source / name, symlinks=True,
                            ignore=shutil.ignore_patterns("__pycache__"))
        else:
            source.mkdir(exist_ok=True)
            shutil.copy(ROOT / name, source / name)
    wheels = root / "wheels"
    _run(sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", wheels, source)
    [wheel] = wheels.glob("mailcase-*.whl")
    venv = root / "venv"
    _run(sys.executable, "-m", "venv", "--without-pip", venv)
    python = venv / "bin" / "python"
    _run(sys.executable, "-m", "pip", "--python", python, "install", "--no-deps", "-q", wheel)
    purelib = _run(python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))")
    (Path(purelib.strip()) / "test-dependencies.pth").write_text(
        sysconfig.get_path("purelib") + "\n")
    return venv


def _run(*command: object) -> str:
    # run from / : `python -c` puts the current folder first on sys.path
    result = subprocess.run([str(c) for c in command], capture_output=True, text=True,
                            timeout=300, check=False, cwd="/")
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_the_wheel_holds_the_templates_and_serves_from_a_config_elsewhere(
    installed: Path, tmp_path: Path, sink: Sink
) -> None:
    python, mailcase = installed / "bin" / "python", installed / "bin" / "mailcase"
    where = _run(python, "-c", "import mailcase; print(mailcase.__file__)")
    assert where.startswith(str(installed)), where  # the wheel's copy, not the checkout
    port = free_port()
    config = tmp_path / "etc" / "mailcase.toml"
    config.parent.mkdir()
    config.write_text(
        f'[database]\nurl = "sqlite:///{tmp_path / "mailcase.db"}"\n'
        f'[smtp]\nhost = "127.0.0.1"\nport = {port}\n'
        f'[outbound]\ntransport = "smtp"\nhost = "127.0.0.1"\nport = {sink.port}\n'
        f'[tokens]\nsecret_file = "{tmp_path / "token-secret"}"\n'
        '[[mailbox]]\naddress = "support@example.com"\nname = "Support"\n')
    env = {k: v for k, v in os.environ.items() if k != "MAILCASE_CONFIG"}
    checked = subprocess.run([str(mailcase), "-c", str(config), "check-config"], env=env,
                             capture_output=True, text=True, timeout=60, check=False,
                             cwd=tmp_path)
    assert checked.returncode == 0, checked.stderr
    assert "templates built in" in checked.stdout
    log = tmp_path / "serve.log"
    with log.open("w") as stderr:
        daemon = subprocess.Popen([str(mailcase), "-c", str(config), "serve"], env=env,
                                  stdout=subprocess.DEVNULL, stderr=stderr, cwd=tmp_path)
    try:
        wait_for(lambda: listening(port) or daemon.poll() is not None, timeout=30,
                 what="the listener")
        assert daemon.poll() is None, log.read_text()
        with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
            client.send_message(mail(message_id="<wheel@customer.org>"))
        wait_for(lambda: sink.messages, timeout=30, what="the acknowledgement")
        [ack] = sink.expect(1)
    finally:
        daemon.terminate()
        daemon.wait(timeout=30)
    assert "[Case #" in str(ack["Subject"])
    kinds = {part.get_content_type() for part in ack.message.walk()}
    assert {"text/plain", "text/html"} <= kinds, kinds


def test_the_wheel_holds_the_consoles_pages_and_stylesheet(installed: Path) -> None:
    """The console's templates (templates/console/) and its stylesheet are installed, so
    an installed console renders its pages and serves its CSS."""
    python = installed / "bin" / "python"
    shown = _run(python, "-c", (
        "from importlib.resources import files; from mailcase.web.console.render import "
        "Pages; print(len(files('mailcase.web.console').joinpath('static/console.css')"
        ".read_text())); print(Pages().env.get_template('login.html.j2').filename)"))
    size, login = shown.split()
    assert int(size) > 0
    assert login.startswith(str(installed)) and login.endswith("console/login.html.j2")
