"""How a user loads the plugin: by its entry point, or by name when autoload is disabled."""

import pytest

USES_THE_PLUGIN = """
    def test_fixture(kexplain, explanation_baseline):
        assert kexplain.cache_info()["hits"] == 0
"""

WAYS = ["-p kexplain", "-p pytest_kexplain.plugin", "-p pytest_kexplain", "conftest"]


def _run(pytester: pytest.Pytester, way: str, *args: str) -> pytest.RunResult:
    pytester.makepyfile(test_user=USES_THE_PLUGIN)
    if way == "conftest":
        pytester.makeconftest('pytest_plugins = ["pytest_kexplain.plugin"]')
        return pytester.runpytest_subprocess(*args)
    return pytester.runpytest_subprocess(*way.split(), *args)


@pytest.mark.parametrize("autoload", [True, False], ids=["autoload", "no-autoload"])
@pytest.mark.parametrize("way", WAYS)
def test_every_natural_way_loads_the_plugin_once(pytester, monkeypatch, way, autoload):
    """Each way works with or without autoload; none registers the plugin a second time
    (pytest refuses that with 'Plugin already registered under a different name')."""
    if autoload:
        monkeypatch.delenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", raising=False)
    else:
        monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")
    result = _run(pytester, way, "--kexplain-no-disk-cache", "-p", "no:cacheprovider")
    assert "already registered" not in result.stderr.str() + result.stdout.str()
    result.assert_outcomes(passed=1)


def test_without_autoload_and_without_p_the_plugin_is_not_loaded(pytester, monkeypatch):
    monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")
    pytester.makepyfile(test_user=USES_THE_PLUGIN)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.stdout.fnmatch_lines(["*fixture 'kexplain' not found*"])


def test_the_entry_point_name_disables_it(pytester):
    pytester.makepyfile(test_user="def test_x(): pass")
    result = pytester.runpytest_subprocess("-p", "no:kexplain", "--help")
    assert "--kexplain-update" not in result.stdout.str()
    assert result.ret == 0


def test_loaded_by_module_name_under_xdist(pytester, monkeypatch):
    """The workers load it the same way as the controller (the report still gathers them)."""
    monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")
    result = _run(pytester, "-p pytest_kexplain.plugin", "-p", "xdist", "-n", "2",
                  "--kexplain-report=report.json", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
    assert (pytester.path / "report.json").is_file()
