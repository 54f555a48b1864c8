"""General Bots style BASIC: parser, compiler and resumable interpreter.

``compile_source`` turns a ``.bas`` file into an immutable :class:`Program`
(a flat list of instructions with jump targets). ``run_turn`` runs it one
conversation turn at a time against a :class:`Host`; a dialog waiting at
``HEAR`` is described by a JSON-compatible state dict that can be stored and
resumed later, in another process (see :mod:`.vm` for the state layout).
"""

from .compiler import compile_source, source_hash
from .errors import (
    BasicError,
    BasicRuntimeError,
    BasicSyntaxError,
    CallDepthExceeded,
    DialogChanged,
    HostProblem,
    LimitExceeded,
    StepBudgetExceeded,
)
from .host import Host
from .limits import Limits
from .program import Program
from .vm import TurnResult, run_turn

__all__ = [
    "BasicError",
    "BasicRuntimeError",
    "BasicSyntaxError",
    "CallDepthExceeded",
    "DialogChanged",
    "Host",
    "HostProblem",
    "LimitExceeded",
    "Limits",
    "Program",
    "StepBudgetExceeded",
    "TurnResult",
    "compile_source",
    "run_turn",
    "source_hash",
]
