"""The nine Batch AI toolkit settings. Exactly one is set on a TrainingJob."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from .base import ApiModel, cel, rules
from .common import MAX_COMMAND, MAX_PATH

PROCESS_COUNT_DESC = "Number of processes, passed to the MPI runtime. Defaults to the job's nodeCount."
INTERPRETER_DESC = "Python interpreter to run the script with. Defaults to 'python' on the PATH."
ARGS_DESC = "Command line arguments; $VARS are expanded by the shell in the pod."
SCRIPT_DESC = "Python script to run."

MSG_BRAINSCRIPT_CONFIG = "cntkSettings.configFilePath is required when languageType is BrainScript"
MSG_CNTK_PYTHON_SCRIPT = "cntkSettings.pythonScriptFilePath is required when languageType is Python"
MSG_CNTK_PYTHON_ONLY = "cntkSettings.pythonScriptFilePath and pythonInterpreterPath are for Python jobs only"
MSG_CNTK_BRAINSCRIPT_ONLY = "cntkSettings.configFilePath is for BrainScript jobs only"
MSG_CNTK_NO_PROGRAM = (
    "cntkSettings: set pythonScriptFilePath (a Python job) or configFilePath (a BrainScript job)"
)
MSG_CNTK_AMBIGUOUS = (
    "cntkSettings: both configFilePath and pythonScriptFilePath are set; set languageType to "
    "BrainScript or Python"
)
MSG_CAFFE_ONE_OF = "caffeSettings: set exactly one of configFilePath or pythonScriptFilePath"
MSG_CAFFE_INTERPRETER = "caffeSettings.pythonInterpreterPath needs pythonScriptFilePath"

# Batch AI made languageType optional with no default (both official BrainScript recipes leave it out):
# without it, the fields given say which language the job is. The same inference in CEL and Python.
_HAS_LANGUAGE = "has(self.languageType)"
_EXPLICIT_BRAINSCRIPT = f"({_HAS_LANGUAGE} && self.languageType == 'BrainScript')"
_EXPLICIT_PYTHON = f"({_HAS_LANGUAGE} && self.languageType == 'Python')"
_BRAINSCRIPT = (
    f"({_HAS_LANGUAGE} ? self.languageType == 'BrainScript' : "
    "(has(self.configFilePath) && !has(self.pythonScriptFilePath)))"
)


def infer_cntk_language(
    language_type: str | None, config_file_path: str | None, python_script_file_path: str | None
) -> str | None:
    """The job's language: languageType when given, else BrainScript for a config file alone and Python
    for a script alone; None when the fields do not say (neither or both given)."""
    if language_type is not None:
        return language_type
    if (config_file_path is None) == (python_script_file_path is None):
        return None
    return "BrainScript" if config_file_path is not None else "Python"


class CNTKsettings(ApiModel):
    """CNTK: a Python script, or BrainScript via 'cntk configFile=...'."""

    model_config = ApiModel.model_config | {
        "json_schema_extra": rules(
            cel(
                f"{_HAS_LANGUAGE} || has(self.configFilePath) || has(self.pythonScriptFilePath)",
                MSG_CNTK_NO_PROGRAM,
                reason="FieldValueRequired",
            ),
            cel(
                f"{_HAS_LANGUAGE} || !(has(self.configFilePath) && has(self.pythonScriptFilePath))",
                MSG_CNTK_AMBIGUOUS,
                field_path=".languageType",
                reason="FieldValueRequired",
            ),
            cel(
                f"!{_EXPLICIT_BRAINSCRIPT} || has(self.configFilePath)",
                MSG_BRAINSCRIPT_CONFIG,
                field_path=".configFilePath",
                reason="FieldValueRequired",
            ),
            cel(
                f"!{_EXPLICIT_PYTHON} || has(self.pythonScriptFilePath)",
                MSG_CNTK_PYTHON_SCRIPT,
                field_path=".pythonScriptFilePath",
                reason="FieldValueRequired",
            ),
            cel(
                f"!{_BRAINSCRIPT} || (!has(self.pythonScriptFilePath) && !has(self.pythonInterpreterPath))",
                MSG_CNTK_PYTHON_ONLY,
            ),
            cel(
                f"!{_EXPLICIT_PYTHON} || !has(self.configFilePath)",
                MSG_CNTK_BRAINSCRIPT_ONLY,
                field_path=".configFilePath",
                reason="FieldValueForbidden",
            ),
        )
    }

    language_type: Literal["BrainScript", "Python"] | None = Field(
        default=None,
        description=(
            "BrainScript or Python. Optional, as in Batch AI: without it, configFilePath alone means "
            "BrainScript and pythonScriptFilePath alone means Python."
        ),
    )
    config_file_path: str | None = Field(
        default=None,
        description="BrainScript configuration file ('cntk configFile=<path>').",
        min_length=1,
        max_length=MAX_PATH,
    )
    python_script_file_path: str | None = Field(
        default=None, description=SCRIPT_DESC, min_length=1, max_length=MAX_PATH
    )
    python_interpreter_path: str | None = Field(
        default=None, description=INTERPRETER_DESC, min_length=1, max_length=MAX_PATH
    )
    command_line_args: str | None = Field(
        default=None, description="Arguments for the python script or cntk.", max_length=MAX_COMMAND
    )
    process_count: int | None = Field(default=None, ge=1, le=100000, description=PROCESS_COUNT_DESC)

    @property
    def language(self) -> str:
        """The job's language, given or inferred (validation guarantees one)."""
        return (
            infer_cntk_language(self.language_type, self.config_file_path, self.python_script_file_path)
            or "Python"
        )

    @property
    def is_brainscript(self) -> bool:
        return self.language == "BrainScript"

    @model_validator(mode="after")
    def _check(self) -> CNTKsettings:
        if self.language_type is None:
            if self.config_file_path is None and self.python_script_file_path is None:
                raise ValueError(MSG_CNTK_NO_PROGRAM)
            if self.config_file_path is not None and self.python_script_file_path is not None:
                raise ValueError(MSG_CNTK_AMBIGUOUS)
        if self.is_brainscript:
            if self.config_file_path is None:
                raise ValueError(MSG_BRAINSCRIPT_CONFIG)
            if self.python_script_file_path is not None or self.python_interpreter_path is not None:
                raise ValueError(MSG_CNTK_PYTHON_ONLY)
        else:
            if self.python_script_file_path is None:
                raise ValueError(MSG_CNTK_PYTHON_SCRIPT)
            if self.config_file_path is not None:
                raise ValueError(MSG_CNTK_BRAINSCRIPT_ONLY)
        return self


class TensorFlowSettings(ApiModel):
    """TensorFlow: parameter servers and workers, each 'python <script> <role args>'."""

    python_script_file_path: str = Field(description=SCRIPT_DESC, min_length=1, max_length=MAX_PATH)
    python_interpreter_path: str | None = Field(
        default=None, description=INTERPRETER_DESC, min_length=1, max_length=MAX_PATH
    )
    master_command_line_args: str | None = Field(
        default=None, description="Arguments for worker 0 (the master).", max_length=MAX_COMMAND
    )
    worker_command_line_args: str | None = Field(
        default=None, description="Arguments for the other workers.", max_length=MAX_COMMAND
    )
    parameter_server_command_line_args: str | None = Field(
        default=None, description="Arguments for parameter servers.", max_length=MAX_COMMAND
    )
    worker_count: int | None = Field(
        default=None,
        ge=1,
        le=100000,
        description="Worker tasks (at most nodeCount x GPUs per node). Defaults to nodeCount.",
    )
    parameter_server_count: int | None = Field(
        default=None,
        ge=0,
        le=1000,
        description="Parameter server tasks (at most nodeCount). Defaults to 1 for distributed jobs, else 0.",
    )
    use_chief: bool | None = Field(
        default=None,
        description=(
            "Kubernetes addition: name worker 0 'chief' in TF_CONFIG (cluster.chief and task.type chief), "
            "which tf.estimator needs. Off by default, as Batch AI built TF_CONFIG."
        ),
    )


class PyTorchSettings(ApiModel):
    """PyTorch: processCount ranks, each 'python <script> <args>' with AZ_BATCHAI_TASK_INDEX = rank."""

    python_script_file_path: str = Field(description=SCRIPT_DESC, min_length=1, max_length=MAX_PATH)
    python_interpreter_path: str | None = Field(
        default=None, description=INTERPRETER_DESC, min_length=1, max_length=MAX_PATH
    )
    command_line_args: str | None = Field(default=None, description=ARGS_DESC, max_length=MAX_COMMAND)
    process_count: int | None = Field(
        default=None, ge=1, le=100000, description="Number of ranks. Defaults to nodeCount."
    )
    communication_backend: str | None = Field(
        default=None,
        description="TCP, Gloo, MPI or NCCL (any case); exported as AZ_BATCHAI_PYTORCH_BACKEND.",
        pattern=r"^(?i:tcp|gloo|mpi|nccl)$",
        max_length=8,
    )


class CaffeSettings(ApiModel):
    """Caffe: 'caffe train --solver=<configFilePath>' or a Python script."""

    model_config = ApiModel.model_config | {
        "json_schema_extra": rules(
            cel("has(self.configFilePath) != has(self.pythonScriptFilePath)", MSG_CAFFE_ONE_OF),
            cel(
                "!has(self.pythonInterpreterPath) || has(self.pythonScriptFilePath)",
                MSG_CAFFE_INTERPRETER,
                field_path=".pythonInterpreterPath",
            ),
        )
    }

    config_file_path: str | None = Field(
        default=None, description="Solver file for 'caffe train'.", min_length=1, max_length=MAX_PATH
    )
    python_script_file_path: str | None = Field(
        default=None, description=SCRIPT_DESC, min_length=1, max_length=MAX_PATH
    )
    python_interpreter_path: str | None = Field(
        default=None, description=INTERPRETER_DESC, min_length=1, max_length=MAX_PATH
    )
    command_line_args: str | None = Field(default=None, description=ARGS_DESC, max_length=MAX_COMMAND)
    process_count: int | None = Field(default=None, ge=1, le=100000, description=PROCESS_COUNT_DESC)

    @model_validator(mode="after")
    def _check(self) -> CaffeSettings:
        if (self.config_file_path is None) == (self.python_script_file_path is None):
            raise ValueError(MSG_CAFFE_ONE_OF)
        if self.python_interpreter_path is not None and self.python_script_file_path is None:
            raise ValueError(MSG_CAFFE_INTERPRETER)
        return self


class Caffe2Settings(ApiModel):
    """Caffe2: one task per node, each with AZ_BATCHAI_TASK_INDEX."""

    python_script_file_path: str = Field(description=SCRIPT_DESC, min_length=1, max_length=MAX_PATH)
    python_interpreter_path: str | None = Field(
        default=None, description=INTERPRETER_DESC, min_length=1, max_length=MAX_PATH
    )
    command_line_args: str | None = Field(default=None, description=ARGS_DESC, max_length=MAX_COMMAND)


class ChainerSettings(ApiModel):
    """Chainer (ChainerMN) under mpirun with processCount ranks."""

    python_script_file_path: str = Field(description=SCRIPT_DESC, min_length=1, max_length=MAX_PATH)
    python_interpreter_path: str | None = Field(
        default=None, description=INTERPRETER_DESC, min_length=1, max_length=MAX_PATH
    )
    command_line_args: str | None = Field(default=None, description=ARGS_DESC, max_length=MAX_COMMAND)
    process_count: int | None = Field(default=None, ge=1, le=100000, description=PROCESS_COUNT_DESC)


class HorovodSettings(ApiModel):
    """Horovod: 'python <script> <args>' under mpirun with processCount ranks."""

    python_script_file_path: str = Field(description=SCRIPT_DESC, min_length=1, max_length=MAX_PATH)
    python_interpreter_path: str | None = Field(
        default=None, description=INTERPRETER_DESC, min_length=1, max_length=MAX_PATH
    )
    command_line_args: str | None = Field(default=None, description=ARGS_DESC, max_length=MAX_COMMAND)
    process_count: int | None = Field(default=None, ge=1, le=100000, description=PROCESS_COUNT_DESC)


class CustomMpiSettings(ApiModel):
    """A program run by the MPI runtime with processCount ranks."""

    command_line: str = Field(
        description="Program and arguments executed by the MPI runtime.", min_length=1, max_length=MAX_COMMAND
    )
    process_count: int | None = Field(default=None, ge=1, le=100000, description=PROCESS_COUNT_DESC)


class CustomToolkitSettings(ApiModel):
    """A command line run once, on the job's first node."""

    command_line: str | None = Field(
        default=None, description="Command line, run by a shell on node 0.", max_length=MAX_COMMAND
    )


# toolType reported in status for each settings field (Batch AI's toolType values).
TOOLKIT_FIELDS: dict[str, str] = {
    "cntk_settings": "cntk",
    "tensor_flow_settings": "tensorflow",
    "py_torch_settings": "pytorch",
    "caffe_settings": "caffe",
    "caffe2_settings": "caffe2",
    "chainer_settings": "chainer",
    "horovod_settings": "horovod",
    "custom_mpi_settings": "mpi",
    "custom_toolkit_settings": "custom",
}
