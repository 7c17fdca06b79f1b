# The standalone gateway: an Orleans client of the cluster serving the OpenAI-compatible API (no model, no libtorch).
#   docker build -f deploy/docker/gateway.Dockerfile -t gpt2orleans/gateway .   (from the repository root)
# It finds the silos through Redis: docker run … gpt2orleans/gateway --redis redis:6379 --cluster-id gpt2orleans
FROM mcr.microsoft.com/dotnet/sdk:10.0 AS build
WORKDIR /src
COPY . .
RUN dotnet publish src/Gateway -c Release -o /app

FROM mcr.microsoft.com/dotnet/aspnet:10.0
RUN apt-get update && apt-get install -y --no-install-recommends curl && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY --from=build /app .
EXPOSE 8080
ENV ASPNETCORE_URLS=http://0.0.0.0:8080
USER $APP_UID
HEALTHCHECK --interval=15s --timeout=3s --start-period=30s CMD curl -fsS http://127.0.0.1:8080/healthz || exit 1
ENTRYPOINT ["dotnet", "gpt2o-gateway.dll"]
