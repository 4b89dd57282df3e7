"""mxspec installed from its wheel, outside the checkout, in an operator's repository.

The wheel is built from the project and installed into a fresh virtualenv, with nothing
downloaded: mxspec's dependencies come from the environment running these tests (its site
folders listed in a .pth file, whose own .pth files, such as the checkout's editable install,
are not read). The operator's folder holds only `features/` and `inventories/`.
"""

import os
import shutil
import site
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from conftest import PROJECT, output

FEATURES_COLLECTED = "features/test_features.py::test_the_postfix_configuration_is_valid[new-router-1]"


def _run(args, cwd, timeout=600) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    return subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=timeout,
                          stdin=subprocess.DEVNULL, env={**env, "PYTHONDONTWRITEBYTECODE": "1", "COLUMNS": "100"})


def _checked(args, cwd, timeout=600) -> subprocess.CompletedProcess:
    result = _run(args, cwd, timeout)
    assert result.returncode == 0, f"{' '.join(map(str, args))}:\n{output(result)}"
    return result


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """(the virtualenv's bin folder, the operator's folder) with mxspec installed from its wheel."""
    base = tmp_path_factory.mktemp("wheel")
    source = base / "source"  # a copy, so building leaves nothing in the checkout
    shutil.copytree(PROJECT / "mxspec", source / "mxspec", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(PROJECT / name, source / name)
    _checked([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-index", "--no-build-isolation",
              "--disable-pip-version-check", "-q", "-w", str(base / "dist"), str(source)], base)
    wheel = next((base / "dist").glob("mxspec-*.whl"))
    venv = base / "venv"
    _checked([sys.executable, "-m", "venv", str(venv)], base)
    python = venv / "bin" / "python"
    purelib = _run([str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"], base).stdout.strip()
    ours = dict.fromkeys([*site.getsitepackages(), sysconfig.get_path("purelib"), sysconfig.get_path("platlib")])
    (Path(purelib) / "mxspec-test-dependencies.pth").write_text("\n".join(ours) + "\n")
    _checked([str(python), "-m", "pip", "install", "--no-deps", "--no-index", "--disable-pip-version-check", "-q",
              str(wheel)], base)
    operator = base / "operator"
    shutil.copytree(PROJECT / "features", operator / "features", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(PROJECT / "inventories", operator / "inventories")
    where = _checked([str(python), "-c", "import mxspec; print(mxspec.__file__)"], operator).stdout.strip()
    assert where.startswith(str(venv)), f"mxspec imported from {where}, not from the wheel"
    return venv / "bin", operator


def test_the_wheel_ships_the_steps_and_the_lab(installed):
    bin_dir, operator = installed
    assert sorted(path.name for path in operator.iterdir()) == ["features", "inventories"]
    steps = _checked([str(bin_dir / "mxspec"), "steps"], operator)
    assert "Then  these packages are installed:" in steps.stdout.splitlines()
    status = _run([str(bin_dir / "mxspec"), "lab", "status"], operator)
    assert "no such file" not in output(status), output(status)
    assert status.returncode in (0, 3), output(status)  # 0: the lab is up; 3: it is not (all of it)
    assert status.stdout.startswith("HOST ") and "new-router-1" in status.stdout, output(status)
    collected = _checked([str(bin_dir / "python"), "-m", "pytest", "--hosts=old-mx,new-mx", "--collect-only", "-q",
                          "-p", "no:cacheprovider"], operator)
    assert FEATURES_COLLECTED in collected.stdout.splitlines(), collected.stdout
    plugin = _checked([str(bin_dir / "python"), "-c", "from mxspec.premerge.converge import CALLBACKS; "
                       "print(CALLBACKS / 'mxspec_record.py')"], operator).stdout.strip()
    assert plugin.startswith(str(bin_dir.parent)) and Path(plugin).is_file(), plugin  # premerge's Ansible callback


def test_the_wheel_checks_a_lab_host_from_the_operators_folder(installed, lab):
    bin_dir, operator = installed
    result = _run([str(bin_dir / "python"), "-m", "pytest", "--hosts=new-mx", "-p", "no:cacheprovider",
                   "-k", "postfix_configuration_is_valid and new-router-1"], operator)
    assert result.returncode == 0, output(result)
    assert "1 passed" in result.stdout, result.stdout
