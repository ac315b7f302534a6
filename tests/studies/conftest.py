"""Fixtures of the study tests: the clock's tiny GPT-2 and prompt, the training runs."""

from tests.clock.conftest import gpt2, prompt  # noqa: F401
from tests.train.conftest import digits_runs, text_file, tiny_gpt2_folder  # noqa: F401
