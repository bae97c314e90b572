"""hybridir serve: the JSON API through Starlette's test client, and the page in a real headless browser."""

from __future__ import annotations

import contextlib
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from test_index import PASSAGES, write_jsonl

from hybridir.encoders.centering import DEFAULT
from hybridir.retrieval.index import build_index
from hybridir.retrieval.search import Searcher
from hybridir.retrieval.serve import create_app


@pytest.fixture(scope="module")
def two_indexes(tiny_model_dir, tmp_path_factory) -> list[Path]:
    """The fixture corpus indexed by two different tiny models, as a zero-shot and a trained model would be."""
    from conftest import build_tiny_encoder

    root = tmp_path_factory.mktemp("serve")
    corpus = write_jsonl(root / "corpus.jsonl", PASSAGES)
    other = build_tiny_encoder(root / "other-model", seed=1)
    for name, model in (("zero-shot", tiny_model_dir), ("hybrid", other)):
        build_index(model, corpus, root / name, show_progress=False)
    return [root / "zero-shot", root / "hybrid"]


@pytest.fixture(scope="module")
def app(two_indexes):
    return create_app([Searcher(p) for p in two_indexes], k=4)


def test_api_lists_indexes_and_searches_both_with_their_language_mix(app):
    from starlette.testclient import TestClient

    client = TestClient(app)
    info = client.get("/api/indexes").json()
    assert [i["name"] for i in info["indexes"]] == ["zero-shot", "hybrid"] and info["k"] == 4
    assert info["indexes"][0]["count"] == 8 and info["indexes"][0]["languages"]["en"] == 3
    body = client.get("/api/search", params={"q": "Hauptstadt von Deutschland", "k": 5}).json()
    assert body["query"] == "Hauptstadt von Deutschland" and body["k"] == 5 and body["query_lang"] == "de"
    assert [r["name"] for r in body["results"]] == ["zero-shot", "hybrid"]
    for result in body["results"]:
        hits = result["hits"]
        assert [h["rank"] for h in hits] == [1, 2, 3, 4, 5]
        assert {"id", "lang", "title", "snippet", "score"} <= set(hits[0])
        mix = result["languages"]
        assert sum(m["count"] for m in mix) == 5 and abs(sum(m["share"] for m in mix) - 1) < 1e-9
        assert result["same_language"] == sum(h["lang"] == "de" for h in hits) / 5
    assert client.get("/api/search", params={"q": "x"}).json()["k"] == 4  # the server's default


def test_the_switch_scores_language_neutrally_and_keeps_the_bar_before(app):
    """centering=1: hits from the centred scoring (serve --centering), the plain scoring's language mix beside it."""
    from starlette.testclient import TestClient

    client = TestClient(app)
    assert client.get("/api/indexes").json()["centering"] == DEFAULT
    plain = client.get("/api/search", params={"q": "Hauptstadt von Deutschland", "k": 8}).json()
    body = client.get("/api/search", params={"q": "Hauptstadt von Deutschland", "k": 8, "centering": 1}).json()
    for before, after in zip(plain["results"], body["results"], strict=True):
        assert after["centering"] == DEFAULT and before["centering"] == "none" and "before" not in before
        assert after["before"] == {k: before[k] for k in ("same_language", "languages")}
        assert sorted(h["id"] for h in after["hits"]) == sorted(h["id"] for h in before["hits"])  # all 8 passages
        assert [h["score"] for h in after["hits"]] != [h["score"] for h in before["hits"]]


@pytest.mark.parametrize(
    ("params", "error"),
    [
        ({}, "empty query"),
        ({"q": "  "}, "empty query"),
        ({"q": "x", "k": "ten"}, "integer"),
        ({"q": "x", "k": 0}, "between"),
    ],
)
def test_api_rejects_bad_requests(app, params, error):
    from starlette.testclient import TestClient

    resp = TestClient(app).get("/api/search", params=params)
    assert resp.status_code == 400 and error in resp.json()["error"]


def test_page_is_one_html_file_with_the_form(app):
    from starlette.testclient import TestClient

    page = TestClient(app).get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert 'id="q"' in page.text and "api/search" in page.text and 'value="4"' in page.text


def _browser() -> tuple[str, str]:
    """Debian's chromium and its chromedriver (.ci/run installs both when it runs as root)."""
    chromium = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    driver = shutil.which("chromedriver")
    if not chromium or not driver:
        pytest.skip("no headless browser: install chromium and chromium-driver (apt-get install chromium "
                    "chromium-driver), as .ci/run does when it runs as root")  # fmt: skip
    pytest.importorskip("selenium", reason="pip install selenium (a dev dependency)")
    return chromium, driver


@contextlib.contextmanager
def serving(app) -> Iterator[str]:
    """The app on a free local port, in a thread of this process: its address."""
    import uvicorn

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    srv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.time() + 30
    while not srv.started and time.time() < deadline:
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}/"
    finally:
        srv.should_exit = True
        thread.join(10)


@pytest.fixture
def server(app):
    with serving(app) as url:
        yield url


def test_page_in_a_headless_browser_shows_two_result_lists_and_language_bars(server, tmp_path):
    chromium, driver_path = _browser()
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu", "--window-size=1280,900"):
        options.add_argument(arg)
    browser = webdriver.Chrome(service=Service(executable_path=driver_path), options=options)
    try:
        browser.get(server)
        box = browser.find_element(By.ID, "q")
        box.send_keys("Hauptstadt von Deutschland")
        browser.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
        hits = (By.CSS_SELECTOR, "section.index ol.hits li")
        WebDriverWait(browser, 60).until(lambda b: len(b.find_elements(*hits)) == 8)
        columns = browser.find_elements(By.CSS_SELECTOR, "section.index")
        assert [c.find_element(By.TAG_NAME, "h2").text for c in columns] == ["zero-shot", "hybrid"]
        for column in columns:
            assert len(column.find_elements(By.CSS_SELECTOR, "ol.hits li")) == 4
            assert all(li.find_element(By.CSS_SELECTOR, ".lang").text for li in column.find_elements(By.TAG_NAME, "li"))
            segments = column.find_elements(By.CSS_SELECTOR, ".langbar .seg")
            assert segments and all(s.size["width"] > 0 for s in segments)
            bar = column.find_element(By.CSS_SELECTOR, ".langbar").size["width"]
            assert abs(sum(s.size["width"] for s in segments) - bar) <= len(segments)  # the bar is filled
        assert "q=Hauptstadt" in browser.current_url  # the query is in the address, so a view can be shared
        browser.find_element(By.ID, "centering").click()  # language-neutral: a bar before and one after
        WebDriverWait(browser, 60).until(lambda b: len(b.find_elements(By.CSS_SELECTOR, ".langbar")) == 4)
        for column in browser.find_elements(By.CSS_SELECTOR, "section.index"):
            whens = [b.get_attribute("data-when") for b in column.find_elements(By.CSS_SELECTOR, ".langbar")]
            assert whens == ["before", f"after ({DEFAULT})"]
        assert "centering=1" in browser.current_url
        assert browser.save_screenshot(str(tmp_path / "page.png"))
    finally:
        browser.quit()
