# Build stage: the same npm scripts as CI (npm ci, then npm run build).
FROM node:20-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY . .
RUN npm run build

# Runtime stage: production dependencies and the compiled server only. Without src/,
# bin/jobatator.js skips the TypeScript build and runs dist/src/cli.js directly.
FROM node:20-slim
ENV NODE_ENV=production
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force
COPY --from=build /app/dist/src ./dist/src
COPY bin ./bin
COPY config.example.yml ./
# The job stores live in data_dir, ./data by default; mount a volume there to keep them.
RUN mkdir -p /app/data && chown node:node /app/data
VOLUME /app/data
USER node
EXPOSE 8962 8952
# Healthy when the TCP port answers PONG to PING within 4 seconds. It checks port 8962, so
# change it here if config.yml sets another port.
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 \
  CMD ["node", "-e", "const s=require('node:net').connect(8962,'127.0.0.1');let r='';s.setTimeout(4000,()=>process.exit(1));s.on('error',()=>process.exit(1));s.on('connect',()=>s.write('PING\\n'));s.on('data',(d)=>{r+=d;if(r.includes('\\n'))process.exit(r==='PONG\\n'?0:1);});"]
# config.yml must be mounted at /app/config.yml (see docker-compose.yml).
CMD ["node", "bin/jobatator.js", "--config", "/app/config.yml", "--host", "0.0.0.0"]
