"""The runtime (run, rules, evaluate, report, bench) must work where torch/Ultralytics are absent."""
import subprocess
import sys
import textwrap


def test_runtime_runs_with_torch_and_ultralytics_unimportable(tmp_path):
    code = textwrap.dedent(f"""
        import sys, importlib.abc
        class Block(importlib.abc.MetaPathFinder):
            def find_spec(self, name, path, target=None):
                if name.split('.')[0] in ('torch', 'torchvision', 'ultralytics'):
                    raise ImportError('blocked ' + name)
        sys.meta_path.insert(0, Block())
        import pockit
        from pockit.report import build_report
        import pockit.evaluate, pockit.bench, pockit.data, pockit.deploy, pockit.sources, pockit.sinks
        s = pockit.run({{"name": "t", "sources": [{{"id": "c", "uri": "data:mot/TUD-Campus", "max_frames": 8}}],
                        "rules": [{{"name": "l", "type": "line_crossing", "line": [[320, 470], [320, 320]]}}]}},
                       run_dir=r"{tmp_path / 'run'}", progress=False)
        build_report(r"{tmp_path / 'run'}", out=r"{tmp_path / 'r.html'}")
        assert not any(m.split('.')[0] in ('torch', 'ultralytics') for m in sys.modules)
        print("frames", s.frames)
    """)
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "frames 8" in r.stdout
    assert (tmp_path / "r.html").stat().st_size > 100_000
