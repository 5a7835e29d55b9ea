"""Deployments as operators make them: a non-editable install into a fresh virtual environment, and the two files
copied to a folder of their own. Both must serve the pages with the assets embedded in the module."""
import shutil
import subprocess
import sys
import sysconfig

import pytest

from conftest import ADMIN_AUTH, ROOT, Server

DISTRIBUTION_FILES = ("pyproject.toml", "README.md", "statusthing.py", "statusthing_pb2.py",
                      "statusthing_pb2_grpc.py")


def get(server, path, headers=None):
    conn = server.http()
    conn.request("GET", path, headers=headers or {})
    response = conn.getresponse()
    return response.status, response.read()


def assert_serves_the_pages(server):
    status, body = get(server, "/")
    assert status == 200 and b"No systems are listed yet." in body
    status, body = get(server, "/admin", {"Authorization": ADMIN_AUTH})
    assert status == 200 and b"StatusThing admin" in body


def test_embedded_assets_match_the_files():
    result = subprocess.run([sys.executable, str(ROOT / "tools" / "embed_assets.py"), "--check"],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


@pytest.mark.sqlite_only
def test_a_non_editable_install_into_a_fresh_venv_serves_the_pages(tmp_path):
    # The distribution is built from a copy of its files, so the build leaves nothing in the repository. The new
    # venv finds the runtime dependencies (already installed for the tests) through a .pth file instead of
    # downloading them again; statusthing itself comes only from the install.
    source = tmp_path / "source"
    source.mkdir()
    for name in DISTRIBUTION_FILES:
        shutil.copy(ROOT / name, source / name)
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    site_packages = next((venv / "lib").glob("python*/site-packages"))
    (site_packages / "test-dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    subprocess.run([sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python"), "install", "-q",
                    "--no-deps", str(source)], check=True, capture_output=True)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    server = Server(tmp_path / "st.db", tmp_path / "server.log", command=[str(venv / "bin" / "statusthing")],
                    cwd=elsewhere)
    try:
        assert_serves_the_pages(server)
    finally:
        assert server.stop() == 0


@pytest.mark.sqlite_only
def test_two_copied_files_are_a_whole_deployment(tmp_path):
    folder = tmp_path / "appliance"
    folder.mkdir()
    for name in ("statusthing.py", "statusthing_pb2.py"):
        shutil.copy(ROOT / name, folder / name)
    server = Server(tmp_path / "st.db", tmp_path / "server.log", script=folder / "statusthing.py", cwd=folder)
    try:
        assert_serves_the_pages(server)
    finally:
        assert server.stop() == 0
