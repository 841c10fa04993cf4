FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY contactcenter ./contactcenter
COPY channels ./channels
COPY agents_ui ./agents_ui
RUN pip install --no-cache-dir .
ENV CC_HOST=0.0.0.0
EXPOSE 8080 2525
CMD ["contactcenter", "serve"]
