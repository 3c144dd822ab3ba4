# syntax=docker/dockerfile:1
# One image for every livinglab service of docker-compose.yml (gateway bridge, LNS
# connectors, stream workers, sink, dashboard builder); the command picks the verb.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    LIVINGLAB_REGISTRY=/app/config/labs.yaml \
    LIVINGLAB_DATA_DIR=/var/lib/livinglab

WORKDIR /app
# Dependencies first, so a code change does not reinstall them.
COPY pyproject.toml README.md ./
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" > /tmp/requirements.txt \
    && pip install -r /tmp/requirements.txt

# An editable install keeps the SQL, Avro and registry files where the code looks for them.
COPY livinglab ./livinglab
COPY connectors ./connectors
COPY streams ./streams
COPY schemas ./schemas
COPY dashboards ./dashboards
COPY config ./config
RUN pip install --no-deps -e .
COPY --chmod=0755 deploy/healthcheck.py /usr/local/bin/livinglab-healthcheck

RUN useradd --system --uid 10001 --home-dir /var/lib/livinglab --create-home livinglab
USER livinglab
VOLUME ["/var/lib/livinglab"]
CMD ["livinglab", "--help"]
