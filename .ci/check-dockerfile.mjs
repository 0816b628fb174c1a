// Lints the Dockerfile with dockerfile-utils (the Dockerfile language server's
// validator) and checks its shape: a multi-stage build, a static CGO_ENABLED=0 build
// with version ldflags, a distroless nonroot final image, a numeric non-root USER, the
// port EXPOSEd and an ENTRYPOINT taking the config path. Prints the build command, with
// the ARG defaults filled in, for the caller to run outside Docker.
import { readFileSync } from 'node:fs';
import { validate } from 'dockerfile-utils';
import { DockerfileParser } from 'dockerfile-ast';

const content = readFileSync(process.argv[2] ?? 'Dockerfile', 'utf8');
const problems = [];
for (const d of validate(content)) {
  problems.push(`line ${d.range.start.line + 1}: ${d.message}`);
}
const df = DockerfileParser.parse(content);
const froms = df.getFROMs();
if (froms.length < 2) problems.push('not a multi-stage build');
const final = froms[froms.length - 1];
if (!/^(gcr\.io\/)?distroless\/static/.test(final.getImageName() ?? '') || final.getImageTag() !== 'nonroot') {
  problems.push(`final image ${final.getImageName()}:${final.getImageTag()} is not distroless static nonroot`);
}
const finalLine = final.getRange().start.line;
const inFinal = df.getInstructions().filter((i) => i.getRange().start.line > finalLine);
const named = (kw) => inFinal.filter((i) => i.getKeyword() === kw);
const user = named('USER').map((i) => i.getArgumentsContent()).pop() ?? '';
if (!/^[1-9][0-9]*(:[0-9]+)?$/.test(user)) problems.push(`USER ${user || '(none)'} is not a numeric non-root user`);
if (!named('EXPOSE').some((i) => i.getArgumentsContent() === '9856')) problems.push('port 9856 is not EXPOSEd');
const entry = named('ENTRYPOINT').map((i) => i.getArgumentsContent()).pop() ?? '';
if (!entry.includes('--config.file=')) problems.push(`ENTRYPOINT ${entry || '(none)'} does not take the config path`);

const args = {};
for (const a of df.getARGs()) {
  const p = a.getProperty();
  if (p) args[p.getName()] = p.getValue() ?? '';
}
const build = df.getInstructions().find((i) => i.getKeyword() === 'RUN' && / go build /.test(i.getArgumentsContent() ?? ''));
if (!build) problems.push('no RUN with go build');
const raw = build?.getArgumentsContent() ?? '';
for (const want of ['GOOS=${TARGETOS}', 'GOARCH=${TARGETARCH}', 'version.Version=$(cat VERSION)']) {
  if (!raw.includes(want)) problems.push(`the build command lacks ${want} (multi-arch builds, the VERSION file)`);
}
if (!/--platform=\$BUILDPLATFORM/.test(content.split('\n')[froms[0].getRange().start.line])) {
  problems.push('the build stage does not run on $BUILDPLATFORM');
}
const cmd = raw.replace(/\$\{?(\w+)\}?/g, (m, n) => (n in args ? args[n] : m));
for (const want of ['CGO_ENABLED=0', '-ldflags', 'version.Version=', '-trimpath']) {
  if (!cmd.includes(want)) problems.push(`the build command lacks ${want}`);
}
if (problems.length) {
  console.error('Dockerfile problems:\n  ' + problems.join('\n  '));
  process.exit(1);
}
console.log(cmd);
