"""Progress bars draw on a terminal only: a log or captured output gets no bar redraws."""

import io

from visionkit.progress import progress_bar


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_bar_draws_on_a_terminal_once_per_state():
    out = Terminal()
    for _ in progress_bar(range(3), desc="work", file=out, mininterval=0):
        pass
    frames = out.getvalue().split("\r")
    assert "work: 100%" in frames[-1] and "3/3" in frames[-1]


def test_no_bar_in_a_log_or_when_disabled():
    log = io.StringIO()  # not a terminal: a file, a pipe, CI, pytest's capture
    assert list(progress_bar(range(3), desc="work", file=log)) == [0, 1, 2]
    assert log.getvalue() == ""
    out = Terminal()
    bar = progress_bar(total=2, desc="work", file=out, enabled=False)
    bar.update(2)
    bar.close()
    assert out.getvalue() == ""
