# The silo on CUDA libtorch (TorchSharp-cuda-linux), for GPU nodes; run it with --device cuda (Gpt2Orleans__Device=cuda).
#   docker build -f deploy/docker/silo-cuda.Dockerfile -t gpt2orleans/silo-cuda .   (from the repository root)
# The CUDA runtime base must match the CUDA version of the libtorch that TorchSharp-cuda-linux brings (12.x); the
# host needs the NVIDIA driver and the NVIDIA container toolkit (docker run --gpus all …). See deploy/README.md.
FROM mcr.microsoft.com/dotnet/sdk:10.0 AS build
WORKDIR /src
COPY . .
RUN dotnet publish src/Silo -c Release -p:TorchBackend=cuda -o /app

FROM mcr.microsoft.com/dotnet/aspnet:10.0 AS dotnet

FROM nvidia/cuda:12.8.1-cudnn-runtime-ubuntu24.04
RUN apt-get update && apt-get install -y --no-install-recommends curl ca-certificates libicu74 && rm -rf /var/lib/apt/lists/*
# The .NET runtime from Microsoft's image, on NVIDIA's CUDA base.
COPY --from=dotnet /usr/share/dotnet /usr/share/dotnet
RUN ln -s /usr/share/dotnet/dotnet /usr/bin/dotnet && useradd --uid 1654 --create-home app
WORKDIR /app
COPY --from=build /app .
EXPOSE 8080 11111 30000
ENV ASPNETCORE_URLS=http://0.0.0.0:8080 \
    Gpt2Orleans__DataDirectory=/data \
    Gpt2Orleans__Device=cuda \
    NVIDIA_VISIBLE_DEVICES=all \
    NVIDIA_DRIVER_CAPABILITIES=compute,utility
RUN mkdir -p /data && chown 1654 /data
USER 1654
HEALTHCHECK --interval=15s --timeout=3s --start-period=120s CMD curl -fsS http://127.0.0.1:8080/healthz || exit 1
ENTRYPOINT ["dotnet", "gpt2o-silo.dll"]
