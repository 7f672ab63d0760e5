# The comparison hub for benchmarks/spawn.py: plain DockerSpawner, same image, no trenv
# checks or lock-down (default bridge network, writable root, no limits). HOME points at /tmp
# because the image's home directory is meant to be a tmpfs.
import os

c = get_config()  # type: ignore[name-defined]  # noqa: F821 - provided by JupyterHub
port = int(os.environ["BENCH_PORT"])
api_port = int(os.environ["BENCH_API_PORT"])
gateway = os.environ["BENCH_GATEWAY"]
c.JupyterHub.bind_url = f"http://127.0.0.1:{port}"
c.JupyterHub.hub_bind_url = f"http://{gateway}:{api_port}"
c.JupyterHub.hub_connect_url = f"http://{gateway}:{api_port}"
c.ConfigurableHTTPProxy.api_url = f"http://127.0.0.1:{os.environ['BENCH_PROXY_PORT']}"
c.JupyterHub.db_url = "sqlite:///" + os.environ["BENCH_STATE"] + "/plain.sqlite"
c.JupyterHub.cookie_secret_file = os.environ["BENCH_STATE"] + "/plain_cookie_secret"
c.JupyterHub.authenticator_class = "dummy"
c.JupyterHub.spawner_class = "dockerspawner.DockerSpawner"
c.DockerSpawner.image = os.environ["BENCH_IMAGE"]
c.DockerSpawner.pull_policy = "never"
c.DockerSpawner.remove = True
c.DockerSpawner.use_internal_ip = True
c.DockerSpawner.network_name = "bridge"
c.DockerSpawner.prefix = "plainbench"
c.DockerSpawner.environment = {"HOME": "/tmp"}
c.DockerSpawner.cmd = ["jupyterhub-singleuser"]
c.DockerSpawner.start_timeout = 120  # the same timeouts as trenv's spawner
c.DockerSpawner.http_timeout = 90
c.JupyterHub.services = [{"name": "bench", "api_token": os.environ["BENCH_TOKEN"]}]
c.JupyterHub.load_roles = [
    {"name": "bench", "scopes": ["admin:users", "admin:servers"], "services": ["bench"]}
]
