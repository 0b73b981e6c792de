"""The nine Batch AI toolkit settings. Exactly one is set on a TrainingJob."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from .base import ApiModel, cel, rules

PROCESS_COUNT_DESC = "Number of processes, passed to the MPI runtime. Defaults to the job's nodeCount."
INTERPRETER_DESC = "Python interpreter to run the script with. Defaults to 'python' on the PATH."
ARGS_DESC = "Command line arguments; $VARS are expanded by the shell in the pod."


class CNTKsettings(ApiModel):
    """CNTK: a Python script, or BrainScript via 'cntk configFile=...'."""

    model_config = ApiModel.model_config | {
        "json_schema_extra": rules(
            cel(
                "!has(self.languageType) || self.languageType != 'BrainScript' || has(self.configFilePath)",
                "cntkSettings.configFilePath is required when languageType is BrainScript",
                field_path=".configFilePath",
            ),
            cel(
                "(has(self.languageType) && self.languageType == 'BrainScript') || has(self.pythonScriptFilePath)",
                "cntkSettings.pythonScriptFilePath is required for Python CNTK jobs",
                field_path=".pythonScriptFilePath",
            ),
            cel(
                "!(has(self.languageType) && self.languageType == 'BrainScript') || "
                "(!has(self.pythonScriptFilePath) && !has(self.pythonInterpreterPath))",
                "cntkSettings.pythonScriptFilePath and pythonInterpreterPath are for Python jobs only",
            ),
        )
    }

    language_type: Literal["BrainScript", "Python"] | None = Field(
        default=None, description="BrainScript or Python. Defaults to Python (Batch AI reported Python for scripts)."
    )
    config_file_path: str | None = Field(default=None, description="BrainScript configuration file.")
    python_script_file_path: str | None = Field(default=None, description="Python script to run.")
    python_interpreter_path: str | None = Field(default=None, description=INTERPRETER_DESC)
    command_line_args: str | None = Field(default=None, description="Arguments for the python script or cntk.")
    process_count: int | None = Field(default=None, ge=1, description=PROCESS_COUNT_DESC)

    @property
    def is_brainscript(self) -> bool:
        return self.language_type == "BrainScript"


class TensorFlowSettings(ApiModel):
    """TensorFlow: parameter servers and workers, each 'python <script> <role args>'."""

    python_script_file_path: str = Field(description="Python script to run.", min_length=1)
    python_interpreter_path: str | None = Field(default=None, description=INTERPRETER_DESC)
    master_command_line_args: str | None = Field(default=None, description="Arguments for worker 0 (the master).")
    worker_command_line_args: str | None = Field(default=None, description="Arguments for the other workers.")
    parameter_server_command_line_args: str | None = Field(
        default=None, description="Arguments for parameter servers."
    )
    worker_count: int | None = Field(
        default=None, ge=1, description="Worker tasks (at most nodeCount x GPUs per node). Defaults to nodeCount."
    )
    parameter_server_count: int | None = Field(
        default=None,
        ge=0,
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

    python_script_file_path: str = Field(description="Python script to run.", min_length=1)
    python_interpreter_path: str | None = Field(default=None, description=INTERPRETER_DESC)
    command_line_args: str | None = Field(default=None, description=ARGS_DESC)
    process_count: int | None = Field(default=None, ge=1, description="Number of ranks. Defaults to nodeCount.")
    communication_backend: str | None = Field(
        default=None,
        description="TCP, Gloo or MPI (any case); exported as AZ_BATCHAI_PYTORCH_BACKEND.",
        pattern=r"^(?i:tcp|gloo|mpi|nccl)$",
    )


class CaffeSettings(ApiModel):
    """Caffe: 'caffe train --solver=<configFilePath>' or a Python script."""

    model_config = ApiModel.model_config | {
        "json_schema_extra": rules(
            cel(
                "has(self.configFilePath) != has(self.pythonScriptFilePath)",
                "caffeSettings: set exactly one of configFilePath or pythonScriptFilePath",
            ),
            cel(
                "!has(self.pythonInterpreterPath) || has(self.pythonScriptFilePath)",
                "caffeSettings.pythonInterpreterPath needs pythonScriptFilePath",
                field_path=".pythonInterpreterPath",
            ),
        )
    }

    config_file_path: str | None = Field(default=None, description="Solver file for 'caffe train'.")
    python_script_file_path: str | None = Field(default=None, description="Python script to run.")
    python_interpreter_path: str | None = Field(default=None, description=INTERPRETER_DESC)
    command_line_args: str | None = Field(default=None, description=ARGS_DESC)
    process_count: int | None = Field(default=None, ge=1, description=PROCESS_COUNT_DESC)


class Caffe2Settings(ApiModel):
    """Caffe2: one task per node, each with AZ_BATCHAI_TASK_INDEX."""

    python_script_file_path: str = Field(description="Python script to run.", min_length=1)
    python_interpreter_path: str | None = Field(default=None, description=INTERPRETER_DESC)
    command_line_args: str | None = Field(default=None, description=ARGS_DESC)


class ChainerSettings(ApiModel):
    """Chainer (ChainerMN) under mpirun with processCount ranks."""

    python_script_file_path: str = Field(description="Python script to run.", min_length=1)
    python_interpreter_path: str | None = Field(default=None, description=INTERPRETER_DESC)
    command_line_args: str | None = Field(default=None, description=ARGS_DESC)
    process_count: int | None = Field(default=None, ge=1, description=PROCESS_COUNT_DESC)


class HorovodSettings(ApiModel):
    """Horovod: 'python <script> <args>' under mpirun with processCount ranks."""

    python_script_file_path: str = Field(description="Python script to run.", min_length=1)
    python_interpreter_path: str | None = Field(default=None, description=INTERPRETER_DESC)
    command_line_args: str | None = Field(default=None, description=ARGS_DESC)
    process_count: int | None = Field(default=None, ge=1, description=PROCESS_COUNT_DESC)


class CustomMpiSettings(ApiModel):
    """A program run by the MPI runtime with processCount ranks."""

    command_line: str = Field(description="Program and arguments executed by the MPI runtime.", min_length=1)
    process_count: int | None = Field(default=None, ge=1, description=PROCESS_COUNT_DESC)


class CustomToolkitSettings(ApiModel):
    """A command line run once, on the job's first node."""

    command_line: str | None = Field(default=None, description="Command line, run by a shell on node 0.")


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
