// Signs with @aws-sdk/cloudfront-signer, the reference for tests/delivery/sign_crosscheck.rs.
//
//   awssdk_sign.mjs cookies    KEY.pem KEY_PAIR_ID POLICY_FILE HASH  -> JSON of the cookies
//   awssdk_sign.mjs canned-url KEY.pem KEY_PAIR_ID URL EXPIRES HASH  -> canned-policy signed URL
//
// The policy text is passed explicitly: given only a URL and dateLessThan the SDK falls back to
// a canned policy. HASH is sha1 or sha256 (the SDK's `algorithm`, SHA1 or SHA256).
import { readFileSync } from "node:fs";
import { getSignedCookies, getSignedUrl } from "@aws-sdk/cloudfront-signer";

const [command, keyPath, keyPairId, ...rest] = process.argv.slice(2);
const privateKey = readFileSync(keyPath, "utf8");

if (command === "cookies") {
  const [policyFile, hash] = rest;
  const policy = readFileSync(policyFile, "utf8");
  const cookies = getSignedCookies({ policy, keyPairId, privateKey, algorithm: hash.toUpperCase() });
  console.log(JSON.stringify(cookies));
} else if (command === "canned-url") {
  const [url, expires, hash] = rest;
  const dateLessThan = new Date(Number(expires) * 1000).toISOString();
  console.log(getSignedUrl({ url, keyPairId, privateKey, dateLessThan, algorithm: hash.toUpperCase() }));
} else {
  console.error(`unknown command ${command}`);
  process.exit(2);
}
