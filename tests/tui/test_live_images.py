"""Images and new series reach open screens live, as new points do."""

from __future__ import annotations

import asyncio
import base64
import io

import pytest
from PIL import Image
from rich.console import Console
from textual.widget import Widget
from textual.widgets import Static
from textual_image.widget import Image as ImageWidget

from tests.conftest import User, fixture_bodies
from tests.tui.conftest import SIZE, open_project, post, until
from tests.tui.test_manual_control_and_devices import details_text
from tui.app import LiveStudioApp
from tui.screens.plots import PlotsScreen

BODIES = fixture_bodies("dvclive_basic")
SAMPLE = "dvclive/plots/images/sample.png"


def image_post(step: int, size: tuple[int, int], path: str = SAMPLE) -> dict:
    buffer = io.BytesIO()
    Image.new("RGB", size, "blue").save(buffer, "PNG")
    png = base64.b64encode(buffer.getvalue()).decode()
    return {**BODIES[2], "step": step, "plots": {path: {"image": png}}}


async def open_plots(pilot, app: LiveStudioApp) -> PlotsScreen:  # type: ignore[no-untyped-def]
    """The plots screen of the project's first experiment, its images shown."""
    await open_project(pilot, app)
    await pilot.press("p")
    await until(pilot, lambda: isinstance(app.screen, PlotsScreen))
    plots = app.screen
    assert isinstance(plots, PlotsScreen)
    await until(pilot, lambda: plots.images_shown)
    return plots


def drawn(screen: PlotsScreen) -> list[tuple[int, int]]:
    return [w.image.size for w in screen.query(".image").results(ImageWidget)]  # type: ignore[union-attr]


def titles(screen: PlotsScreen) -> list[str]:
    return [str(t.render()) for t in screen.query(".image-title")]


async def test_the_plots_screen_shows_each_new_image_in_place_of_the_old(
    logged_in_app: LiveStudioApp, alice: User
) -> None:
    app = logged_in_app
    await post(alice, BODIES[1])
    await post(alice, image_post(0, (8, 8)))
    async with app.run_test(size=SIZE) as pilot:
        plots = await open_plots(pilot, app)
        await until(pilot, lambda: drawn(plots) == [(8, 8)])
        assert "(step 0)" in titles(plots)[0]

        await post(alice, image_post(1, (6, 6)))  # the same image, a step later
        await until(pilot, lambda: drawn(plots) == [(6, 6)])
        assert len(titles(plots)) == 1 and "(step 1)" in titles(plots)[0]

        await post(alice, image_post(2, (4, 4), "dvclive/plots/images/other.png"))
        await until(pilot, lambda: sorted(drawn(plots)) == [(4, 4), (6, 6)])
        assert any("other.png" in t and "(step 2)" in t for t in titles(plots))


async def test_the_details_screen_lists_new_series_and_images_live(
    logged_in_app: LiveStudioApp, alice: User
) -> None:
    app = logged_in_app
    await post(alice, BODIES[1])
    async with app.run_test(size=SIZE) as pilot:
        await open_project(pilot, app)
        shown = await details_text(pilot, app)
        assert "images" in shown and "sample.png" not in shown
        screen = app.screen
        await post(alice, image_post(4, (4, 4)))
        await until(pilot, lambda: any(i.path == "sample.png" for i in screen.detail.images))  # type: ignore[attr-defined]
        body = {
            **BODIES[2],
            "step": 5,
            "plots": {"dvclive/plots/metrics/brand/new.tsv": {"data": [{"step": 5, "new": 1.5}]}},
        }
        await post(alice, body)
        await until(pilot, lambda: "brand/new" in screen.detail.series)  # type: ignore[attr-defined]
        console = Console(width=120, record=True, file=io.StringIO())
        console.print(screen.query_one("#body").content)  # type: ignore[attr-defined]
        text = console.export_text()
        assert "sample.png (step 4)" in text and "brand/new" in text


async def test_many_images_at_once_and_in_quick_succession_each_keep_their_place(
    logged_in_app: LiveStudioApp, alice: User
) -> None:
    app = logged_in_app
    await post(alice, BODIES[1])
    names = ["a.png", "b.png", "c.png"]

    def several(step: int, size: tuple[int, int]) -> dict:
        body = image_post(step, size)
        plots = {}
        for name in names:
            plots.update(image_post(step, size, f"dvclive/plots/images/{name}")["plots"])
        return {**body, "plots": plots}

    def shown(screen: PlotsScreen) -> list[tuple[str, list[tuple[int, int]]]]:
        """Each image's title and pictures (two only for a moment, while one replaces the
        other)."""
        return [
            (
                str(item.query_one(".image-title").render()),
                [w.image.size for w in item.query(".image").results(ImageWidget)],  # type: ignore[union-attr]
            )
            for item in screen.query(".image-item")
            if item.query(".image-title")  # (an item mounted a moment before its title)
        ]

    async with app.run_test(size=SIZE) as pilot:
        plots = await open_plots(pilot, app)
        await post(alice, several(1, (8, 8)))  # three new images in one post
        for step, size in ((2, (6, 6)), (3, (5, 5)), (4, (4, 4))):  # then quickly replaced
            await post(alice, several(step, size))
        # (A fetch made for step 3 may already bring step 4's picture: the title catches
        # up with the fetch for step 4 that follows it.)
        await until(
            pilot,
            lambda: (
                len(plots.query(".image-item")) == len(shown(plots)) == 3
                and all(sizes == [(4, 4)] and "(step 4)" in t for t, sizes in shown(plots))
            ),
        )
        titles = [title for title, _ in shown(plots)]
        assert sorted(name for name in names if any(name in t for t in titles)) == names


async def test_a_reload_while_a_new_image_is_fetched_shows_it_once(
    logged_in_app: LiveStudioApp, alice: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = logged_in_app
    await post(alice, BODIES[1])
    fetch = PlotsScreen._picture
    slow = {"state": "off"}

    async def slow_once(self: PlotsScreen, experiment_id: int, path: str) -> Widget:
        if slow["state"] == "armed":  # a slow network, once
            slow["state"] = "waiting"
            await asyncio.sleep(1.5)
            try:
                return await fetch(self, experiment_id, path)
            finally:
                slow["state"] = "done"
        return await fetch(self, experiment_id, path)

    monkeypatch.setattr(PlotsScreen, "_picture", slow_once)
    async with app.run_test(size=SIZE) as pilot:
        plots = await open_plots(pilot, app)
        slow["state"] = "armed"
        await post(alice, image_post(1, (6, 6)))  # a new image, fetched slowly
        await until(pilot, lambda: slow["state"] == "waiting")
        await pilot.press("r")  # the reload shows it too
        await until(
            pilot,
            lambda: slow["state"] == "done" and plots.images_shown and not plots.images_draining,
        )
        await pilot.pause(0.3)
        assert len(plots.query(".image-item")) == 1, titles(plots)
        assert drawn(plots) == [(6, 6)]


async def test_a_run_logging_an_image_every_step_shows_its_newest_ones(
    logged_in_app: LiveStudioApp, alice: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``img/{step}.png`` every step made a picture of every step, each fetched and drawn
    when the plots opened: each run shows its newest IMAGES_PER_RUN and counts the rest."""
    from tui.screens.plots import IMAGES_PER_RUN

    total = IMAGES_PER_RUN + 5
    for step in range(total):
        await post(alice, image_post(step, (4, 4), f"dvclive/plots/images/img/{step}.png"))
    async with logged_in_app.run_test(size=SIZE) as pilot:
        plots = await open_plots(pilot, logged_in_app)
        await until(pilot, lambda: len(plots.query(".image-item")) == IMAGES_PER_RUN)
        shown = titles(plots)
        assert "img/16.png" in shown[-1] and not any("img/4.png" in t for t in shown)
        more = plots.query_one("#images-more", Static)
        assert more.display and "5 older images not shown" in str(more.render())
        # Live: a new step's image takes the oldest one's place, and the count goes up.
        await post(alice, image_post(total, (4, 4), f"dvclive/plots/images/img/{total}.png"))
        await until(pilot, lambda: any(f"img/{total}.png" in t for t in titles(plots)))
        await until(pilot, lambda: not any("img/5.png" in t for t in titles(plots)))
        assert len(plots.query(".image-item")) == IMAGES_PER_RUN
        assert "6 older images not shown" in str(more.render())
        # One not shown, logged again at the newest step, comes back in place of the
        # oldest (counted once all along); logged again no newer than the oldest shown
        # but one step, it stays out (a fixed set of more names than shown: no churn).
        before = titles(plots)
        await post(alice, image_post(total + 1, (4, 4), "dvclive/plots/images/img/0.png"))
        await until(pilot, lambda: any("  img/0.png  " in t for t in titles(plots)))
        assert titles(plots)[:-1] == before[1:]  # only the oldest made room
        assert "6 older images not shown" in str(more.render())
        oldest = min(s for (_, _), s in plots.image_steps.items() if s is not None)
        await post(alice, image_post(oldest + 1, (4, 4), "dvclive/plots/images/img/1.png"))
        marker = f"dvclive/plots/images/img/{total + 2}.png"
        await post(alice, image_post(total + 2, (4, 4), marker))  # to know the first came
        await until(pilot, lambda: any(f"img/{total + 2}.png" in t for t in titles(plots)))
        assert not any("  img/1.png  " in t for t in titles(plots))
        assert "7 older images not shown" in str(more.render())
        # Details lists the newest (here 5) and counts the others.
        monkeypatch.setattr("tui.screens.details.IMAGES_LISTED", 5)
        await pilot.press("escape")
        listed = " ".join((await details_text(pilot, logged_in_app)).split())  # unwrapped
        assert f"img/{total + 2}.png (step {total + 2})" in listed and "img/12.png" not in listed
        assert f"and {total + 2 - 5} older ones" in listed  # paths 0 to total, and total + 2


async def test_an_image_logged_once_stays_beside_one_logged_every_step(
    logged_in_app: LiveStudioApp, alice: User
) -> None:
    """By age alone, `img/{step}.png` every step pushed the run's one photo out."""
    from tui.screens.plots import IMAGES_PER_RUN

    await post(alice, image_post(0, (4, 4), "dvclive/plots/images/photo.jpg"))
    for step in range(1, IMAGES_PER_RUN + 3):
        await post(alice, image_post(step, (4, 4), f"dvclive/plots/images/img/{step}.png"))
    async with logged_in_app.run_test(size=SIZE) as pilot:
        plots = await open_plots(pilot, logged_in_app)
        await until(pilot, lambda: len(plots.query(".image-item")) == IMAGES_PER_RUN)
        assert any("photo.jpg" in t for t in titles(plots))
        assert any(f"img/{IMAGES_PER_RUN + 2}.png" in t for t in titles(plots))
        # Live too: new steps' images take the place of the family's oldest, not the photo.
        for step in range(IMAGES_PER_RUN + 3, IMAGES_PER_RUN + 6):
            path = f"dvclive/plots/images/img/{step}.png"
            await post(alice, image_post(step, (4, 4), path))
        await until(pilot, lambda: any(f"img/{IMAGES_PER_RUN + 5}.png" in t for t in titles(plots)))
        assert any("photo.jpg" in t for t in titles(plots))
        assert len(plots.query(".image-item")) == IMAGES_PER_RUN


def test_an_image_takes_cells_in_its_own_shape() -> None:
    from tui.images import cell_size

    assert cell_size((28, 28), 76) == (24, 12)  # a cell is about twice as tall as wide
    assert cell_size((4000, 10), 76) == (76, 1)  # not a 76 x 12 block
    assert cell_size((10, 3000), 76) == (1, 12)  # not a blank box without a column
    assert cell_size((640, 480), 20) == (20, 8)  # narrower room: smaller, same shape
    assert cell_size((0, 0), 76) == (24, 12)  # (a header claiming nothing)


async def test_a_tall_or_wide_image_is_drawn_in_its_shape(
    logged_in_app: LiveStudioApp, alice: User
) -> None:
    app = logged_in_app
    await post(alice, BODIES[1])
    await post(alice, image_post(0, (10, 3000)))
    await post(alice, image_post(0, (4000, 10), "dvclive/plots/images/wide.png"))
    async with app.run_test(size=SIZE) as pilot:
        plots = await open_plots(pilot, app)
        await until(pilot, lambda: len(drawn(plots)) == 2)
        await pilot.pause()
        sizes = sorted(
            (w.size.width, w.size.height) for w in plots.query(".image").results(ImageWidget)
        )
        assert sizes == [(1, 12), (SIZE[0] - 4, 1)]
