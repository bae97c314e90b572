"""Make docs/serve.png: ``hybridir serve`` comparing two models on XQuAD-R's candidate pools, in a real browser.

The corpus is every XQuAD-R candidate sentence of ``--languages`` (the complete pools, ~1,190 a language); each
model gets its own index (``hybridir index``), the page shows both top-k lists for one XQuAD-R question, and
headless chromium saves the screenshot. Needs chromium + chromedriver (as the browser test does)::

    .venv/bin/python docs/serve_screenshot.py --model-b runs/hybrid-qa/final --out docs/serve.png
"""

from __future__ import annotations

import argparse
import json
import shutil
import socket
import threading
import time
from pathlib import Path

from hybridir.data import resolve_data_dir
from hybridir.data.evaluation.lareqa import load_lareqa
from hybridir.infra.files import atomic_write_text
from hybridir.retrieval.index import build_index
from hybridir.retrieval.serve import create_app


def write_corpus(languages: list[str], path: Path, data_dir: Path | None) -> tuple[str, str]:
    """XQuAD-R's candidate sentences as a JSONL corpus; returns the first German (else first) question and its
    language."""
    es = load_lareqa(resolve_data_dir(data_dir) / "xquad-r", languages)
    rows = (json.dumps({"id": f"{lang}/{cid}", "text": text, "lang": lang}, ensure_ascii=False)
            for cid, text, lang in zip(es.cand_ids, es.cand_texts, es.cand_langs, strict=True))  # fmt: skip
    atomic_write_text(path, "\n".join(rows) + "\n")
    lang = "de" if "de" in languages else languages[0]
    return es.query_texts[es.query_langs.index(lang)], lang


def screenshot(app, query: str, out: Path) -> None:
    import uvicorn
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    threading.Thread(target=server.run, daemon=True).start()
    while not server.started:
        time.sleep(0.05)
    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium") or shutil.which("google-chrome") or "chromium"
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1400,1000"):
        options.add_argument(arg)
    browser = webdriver.Chrome(service=Service(executable_path=shutil.which("chromedriver")), options=options)
    try:
        browser.get(f"http://127.0.0.1:{port}/")
        browser.find_element(By.ID, "q").send_keys(query)
        browser.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
        WebDriverWait(browser, 120).until(lambda b: b.find_elements(By.CSS_SELECTOR, "section.index ol.hits li"))
        time.sleep(1)
        browser.save_screenshot(str(out))
    finally:
        browser.quit()
        server.should_exit = True


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model-a", default="e5-small")
    p.add_argument("--model-b", required=True, help="e.g. a hybrid-trained run's final model")
    p.add_argument("--name-a", default="zero-shot-e5-small")
    p.add_argument("--name-b", default="hybrid-qa-recipe")
    p.add_argument("--languages", default="de,en,es,ar,zh")
    p.add_argument("--k", type=int, default=8)
    p.add_argument("--work", type=Path, default=Path("runs/serve-screenshot"))
    p.add_argument("--data-dir", type=Path, default=None)
    p.add_argument("--out", type=Path, default=Path("docs/serve.png"))
    args = p.parse_args()
    corpus = args.work / "corpus.jsonl"
    query, lang = write_corpus(args.languages.split(","), corpus, args.data_dir)
    folders = []
    for model, name in ((args.model_a, args.name_a), (args.model_b, args.name_b)):
        folders.append(args.work / name)
        build_index(model, corpus, folders[-1])
    print(f"query ({lang}): {query}")
    screenshot(create_app(folders, k=args.k), query, args.out)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
