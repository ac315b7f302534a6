"""The figure helpers (``analogsim/report/figure.py``) every plot uses."""

from __future__ import annotations

from analogsim.report.figure import colour_cycle, new_figure, plt, save_figure


def test_save_figure_writes_a_png_in_a_new_folder_and_closes(tmp_path):
    fig, ax = new_figure((4, 3))
    ax.plot([0, 1], [1, 0], color=colour_cycle()[0])
    before = len(plt.get_fignums())
    path = save_figure(fig, tmp_path / "sub" / "a.png", dpi=50)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(plt.get_fignums()) == before - 1
    assert fig.get_size_inches().tolist() == [4.0, 3.0]


def test_new_figure_passes_subplot_arguments():
    fig, axes = new_figure((6, 3), nrows=1, ncols=2, squeeze=False)
    assert axes.shape == (1, 2)
    plt.close(fig)
