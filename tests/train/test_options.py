"""Training options from YAML: each value becomes its option's type, and a bad one names file and key."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given
from hypothesis import strategies as st

from roadseg.errors import BadInputError, BadParameterError
from roadseg.train.loop import TrainConfig, load_run_config
from roadseg.train.options import parse_option, read_yaml_options


def _yaml_config(tmp_path, text: str):
    path = tmp_path / "train.yaml"
    path.write_text(text)
    return path, TrainConfig.from_dict(read_yaml_options(path), source=path)


class TestValues:
    def test_yaml_1_1_exponent_floats_are_numbers(self, tmp_path):
        """PyYAML reads ``1e-4`` (no dot) as text; the option still gets the number."""
        path, config = _yaml_config(tmp_path, "data: d\nlr: 1e-4\nval_split: 5E-2\n")
        assert read_yaml_options(path)["lr"] == "1e-4"  # what YAML 1.1 gives
        assert config.lr == 1e-4 and isinstance(config.lr, float)
        assert config.val_split == 0.05

    @given(st.floats(min_value=1e-12, max_value=10.0))
    def test_any_float_written_as_text_reads_back(self, value):
        assert parse_option("lr", float, repr(value)) == value
        assert parse_option("lr", float, f"{value:e}") == float(f"{value:e}")

    @pytest.mark.parametrize(("kind", "value", "expected"), [
        (int, "12", 12), (int | None, None, None), (bool, "yes", True), (bool, "False", False),
        (str, 2024, "2024"), (str | None, "x", "x"), (float, 3, 3.0)])
    def test_conversions(self, kind, value, expected):
        assert parse_option("option", kind, value) == expected

    @pytest.mark.parametrize(("kind", "value", "wanted"), [
        (int, "abc", "a whole number"), (int, 2.5, "a whole number"), (int, True, "a whole number"),
        (int, None, "a whole number"), (float, "fast", "a number"), (float, [1], "a number"),
        (bool, "maybe", "true or false"), (str, ["a"], "text"), (str, False, "text")])
    def test_wrong_types_name_the_option(self, kind, value, wanted):
        with pytest.raises(BadParameterError) as caught:
            parse_option("option", kind, value)
        assert caught.value.parameter == "option"
        assert caught.value.problem == f"must be {wanted}, got {value!r}"


class TestConfigFile:
    @pytest.mark.parametrize(("text", "message"), [
        ("epochs: abc\n", "key 'epochs' must be a whole number, got 'abc'"),
        ("epochs: 0\n", "key 'epochs' must be at least 1, got 0"),
        ("lr: -1e-3\n", "key 'lr' must be a positive number, got -0.001"),
        ("crop: 100\n", "key 'crop' must be a positive multiple of 32, got 100"),
        ("augment: sometimes\n", "key 'augment' must be true or false, got 'sometimes'")])
    def test_a_bad_value_names_the_file_and_the_key(self, tmp_path, text, message):
        with pytest.raises(BadInputError) as caught:
            _yaml_config(tmp_path, "data: d\n" + text)
        assert str(caught.value) == f"{tmp_path / 'train.yaml'}: {message}"

    def test_a_bad_override_is_the_overrides_own_error(self, tmp_path):
        """A value given beside the file (a flag) is not blamed on the file."""
        path = tmp_path / "train.yaml"
        path.write_text("data: d\nepochs: abc\n")
        with pytest.raises(BadParameterError, match="crop"):
            TrainConfig.from_dict(read_yaml_options(path), source=path, overrides={"epochs": 2, "crop": 40})
        config = TrainConfig.from_dict(read_yaml_options(path), source=path, overrides={"epochs": 2})
        assert config.epochs == 2

    def test_a_data_source_override_replaces_the_files(self, tmp_path):
        path = tmp_path / "train.yaml"
        path.write_text("data: d\n")
        config = TrainConfig.from_dict(read_yaml_options(path), source=path,
                                       overrides={"images": "i", "masks": "m"})
        assert (config.data, config.images, config.masks) == (None, "i", "m")

    @pytest.mark.parametrize(("text", "reason"), [
        ("epochs: [3\nlr: 2\n", "not valid YAML (expected ',' or ']', but got ':' at line 2, column 3)"),
        ("- epochs\n", "holds a list, not a mapping of option: value"),
        (b"epochs: \xff\xfe\n", "not valid YAML")])
    def test_a_file_that_is_no_mapping_is_one_line(self, tmp_path, text, reason):
        path = tmp_path / "train.yaml"
        path.write_bytes(text if isinstance(text, bytes) else text.encode())
        with pytest.raises(BadInputError) as caught:
            read_yaml_options(path, "; fix it")
        message = str(caught.value)
        assert message.startswith(f"{path}: {reason}") and message.endswith("; fix it")
        assert "\n" not in message


class TestRunConfig:
    def _run(self, tmp_path, text: str):
        run = tmp_path / "run"
        run.mkdir()
        (run / "config.yaml").write_text(text)
        return run

    def test_a_saved_config_loads_with_its_directory_as_output(self, tmp_path):
        saved = TrainConfig(data="d", output="elsewhere", lr=1e-7, crop=64)
        import yaml

        run = self._run(tmp_path, yaml.safe_dump(saved.to_dict()))
        assert load_run_config(run) == dataclasses.replace(saved, output=str(run))

    @pytest.mark.parametrize(("text", "reason"), [
        ("data: d\nepochs: [3\n", "not valid YAML (expected ',' or ']', but got '<stream end>' at line 3, column 1)"),
        ("", "empty"),
        ("data: d\nepochs: many\n", "key 'epochs' must be a whole number, got 'many'")])
    def test_a_damaged_config_is_one_line_with_the_ways_on(self, tmp_path, text, reason):
        run = self._run(tmp_path, text)
        with pytest.raises(BadInputError) as caught:
            load_run_config(run)
        assert str(caught.value) == (f"{run / 'config.yaml'}: {reason}; repair it (the run's options, as YAML) "
                                     "or start the run again with `overwrite`")
