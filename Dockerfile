# netwatch: the `netwatch` console command on a slim Python, run as a numeric non-root user.
#
#   docker build -t registry.example.invalid/netwatch:0.1.0 .
#
# The tag is pyproject's version; k8s/ names the same image. Python is the lowest that pyproject's
# requires-python allows. The only download is the package's dependencies from PyPI (pip).
FROM python:3.11-slim-bookworm

# No .pyc written at run time (the root filesystem is read-only in k8s/); pip compiles them at build.
ENV PYTHONDONTWRITEBYTECODE=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore

WORKDIR /build
COPY pyproject.toml README.md ./
COPY netwatch ./netwatch
RUN pip install . && rm -rf /build

WORKDIR /
# 65532 as in the k8s/ pods; the ping-sweep pod alone overrides it with UID 0 and only NET_RAW.
USER 65532:65532
# Exec form: netwatch is PID 1 and gets SIGTERM itself (it installs its own handler).
ENTRYPOINT ["netwatch"]
CMD ["--help"]
