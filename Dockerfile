# neuronetz-gateway: a small image running `neuronetz-gateway serve`.
FROM python:3.11.15-slim-bookworm AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY config ./config
COPY models ./models
COPY limits ./limits
COPY server ./server
COPY routes ./routes
COPY migrations ./migrations
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

FROM python:3.11.15-slim-bookworm
RUN useradd --system --uid 10001 --home /app gateway
WORKDIR /app
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir /wheels/*.whl && rm -rf /wheels
USER gateway
ENV GATEWAY_HOST=0.0.0.0 GATEWAY_PORT=8080 LOG_FORMAT=json
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=3s --retries=3 \
  CMD python -c "import urllib.request,sys; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8080/healthz').status==200 else 1)"
ENTRYPOINT ["neuronetz-gateway"]
CMD ["serve"]
