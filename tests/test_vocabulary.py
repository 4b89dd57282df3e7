"""Misspelt steps stop the run before any host is contacted; `mxspec steps` lists the vocabulary."""

from conftest import PROJECT, output, run_mxspec, run_mxspec_pytest


def test_misspelt_step_fails_at_collection_with_file_line_and_closest_phrase():
    result = run_mxspec_pytest(str(PROJECT / "tests/data/misspelt/bind_misspelt.py"),
                               "--hosts=local://", "--roles=inbound-mx",
                               "-o", "python_files=bind_*.py", "-p", "no:cacheprovider")
    text = output(result)
    assert result.returncode == 4, text
    assert "Traceback" not in text
    assert ('tests/data/misspelt/misspelt.feature:7: undefined step "Then these servces are running and enabled at boot:"; '
            'closest known phrase: "these services are running and enabled at boot:"') in text
    assert "misspelt.feature:4" not in text  # the well-spelt step is not reported
    assert "passed" not in text and "failed" not in text  # stopped before any scenario ran


def test_step_vocabulary_lists_every_phrase_with_a_description():
    result = run_mxspec("steps")
    assert result.returncode == 0, output(result)
    lines = result.stdout.splitlines()
    assert "Then  these packages are installed:" in lines
    assert "      Each package of the table (column `package`) is installed." in lines
    phrases = [line for line in lines if line.startswith(("Given", "When", "Then"))]
    descriptions = [line for line in lines if line.startswith("      ")]
    assert len(phrases) >= 6 and len(descriptions) == len(phrases)


def test_readme_lists_the_current_vocabulary():
    readme = (PROJECT / "README.md").read_text()
    block = readme.split("<!-- vocabulary: the output of `mxspec steps` -->\n```\n", 1)[1].split("```", 1)[0]
    assert block == run_mxspec("steps").stdout, "README's step vocabulary is out of date: paste `mxspec steps`"
