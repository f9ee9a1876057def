# The project's image, for the web server and the workers alike (docker-compose.yml; docs/deploy.md).
#
#   docker build -t ideas .                      # CPU: the torch pinned in requirements.txt, CPU build
#   docker build -t ideas:gpu --build-arg TORCH_INDEX_URL=https://download.pytorch.org/whl/cu128 .
#                                                # GPU: the same torch version, CUDA build (pick the cuXYZ
#                                                # index for a CUDA version the host's driver supports)
#
# Building needs PyPI and PyTorch's wheel index (or mirrors of them: pass PIP_INDEX_URL / TORCH_INDEX_URL).
# Models are not baked in: mount them at /srv/models (PRETRAINED_MODEL_DIRS, EVAL_MODEL_DIR).
FROM python:3.11-slim-bookworm

ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu
# The commit the image holds (the image has no .git): recorded in each run's reproducibility manifest.
ARG GIT_COMMIT=""

ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    GIT_COMMIT=${GIT_COMMIT} \
    DJANGO_DEBUG=0 \
    STATIC_ROOT=/app/staticfiles \
    ARTIFACT_ROOT=/srv/artifacts \
    PRETRAINED_MODEL_DIRS=/srv/models \
    EVAL_MODEL_DIR=/srv/models/eval-lm

RUN useradd --create-home --uid 1000 ideas
WORKDIR /app

# torch first, from the index chosen above, at the version requirements.txt pins; then the rest, which
# keeps it (2.13.0+cpu or +cu128 satisfies torch==2.13.0). From PyPI alone, torch would be the CUDA build
# with its multi-GB libraries, which a CPU worker does not need.
COPY requirements.txt constraints.txt ./
RUN TORCH_VERSION="$(sed -n 's/^torch==//p' requirements.txt)" \
    && test -n "$TORCH_VERSION" \
    && python -m pip install "torch==${TORCH_VERSION}" --index-url "$TORCH_INDEX_URL" \
    && python -m pip install -r requirements.txt

COPY . .
# Static files collected into the image (WhiteNoise serves them); the key only lets settings load here.
RUN DJANGO_SECRET_KEY=build-only-not-a-secret python manage.py collectstatic --no-input -v0 \
    && mkdir -p /app/var /srv/artifacts /srv/models \
    && chown ideas:ideas /app/var /srv/artifacts /app/docs/benchmarks.md
# The code stays root's (the web process cannot change it); ideas may write var/ (scripts/gpu_check.sh's report)
# and docs/benchmarks.md, whose section the GPU ablation benchmark rewrites.

USER ideas
EXPOSE 8000
# The web server; docker-compose.yml runs migrations first, and workers override the command.
CMD ["gunicorn", "-c", "config/gunicorn.py", "--bind", "0.0.0.0:8000", "--workers", "4"]
