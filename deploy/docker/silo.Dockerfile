# The silo (Orleans silo + co-hosted OpenAI-compatible gateway) on CPU libtorch.
#   docker build -f deploy/docker/silo.Dockerfile -t gpt2orleans/silo .        (from the repository root)
# Configuration comes from Gpt2Orleans__* environment variables or a mounted appsettings.Production.json
# (deploy/k8s/base/config.yaml); the entry point is the command deploy/local/cluster.sh runs: dotnet gpt2o-silo.dll.
FROM mcr.microsoft.com/dotnet/sdk:10.0 AS build
WORKDIR /src
COPY . .
RUN dotnet publish src/Silo -c Release -p:TorchBackend=cpu -o /app

FROM mcr.microsoft.com/dotnet/aspnet:10.0
# curl for the health check (the runtime image has none).
RUN apt-get update && apt-get install -y --no-install-recommends curl && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY --from=build /app .
# 8080 HTTP (API, /healthz, /readyz, /metrics), 11111 silo-to-silo, 30000 Orleans clients (the standalone gateway).
EXPOSE 8080 11111 30000
ENV ASPNETCORE_URLS=http://0.0.0.0:8080 \
    Gpt2Orleans__DataDirectory=/data
# The image's non-root user; /data holds KV spills (an emptyDir in Kubernetes), HOME the patched TorchSharp library.
RUN mkdir -p /data && chown $APP_UID /data
USER $APP_UID
HEALTHCHECK --interval=15s --timeout=3s --start-period=60s CMD curl -fsS http://127.0.0.1:8080/healthz || exit 1
ENTRYPOINT ["dotnet", "gpt2o-silo.dll"]
