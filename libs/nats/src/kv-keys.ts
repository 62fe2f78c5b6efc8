// KV keys allow only [-/_=.a-zA-Z0-9], while users and segment names can be any string. Each key
// component is escaped on its own (`=HH` per UTF-8 byte outside [A-Za-z0-9_-]) and components are
// joined with `.`, so `z.x`+`y` and `x`+`y.z` stay different keys and a vendor prefix selects a partition.

const plain = /^[A-Za-z0-9_-]+$/;

/** Encodes one key component; injective, and readable for plain names like `usr-01a268`. */
export function encodeKeyToken(value: string | number): string {
  const text = String(value);
  if (text === '') return '=';
  if (plain.test(text)) return text;
  let out = '';
  for (const char of text) {
    if (plain.test(char)) out += char;
    else for (const byte of Buffer.from(char, 'utf8')) out += `=${byte.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return out;
}

export function decodeKeyToken(token: string): string {
  if (token === '=') return '';
  if (!token.includes('=')) return token;
  const bytes: number[] = [];
  for (let i = 0; i < token.length; ) {
    if (token[i] === '=') {
      bytes.push(parseInt(token.slice(i + 1, i + 3), 16));
      i += 3;
    } else {
      bytes.push(token.charCodeAt(i));
      i += 1;
    }
  }
  return Buffer.from(bytes).toString('utf8');
}

/** The KV key of a composite key's values, e.g. [7, 'seg-1A', 'usr-00ff00'] → `7.seg-1A.usr-00ff00`. */
export function encodeKey(values: readonly (string | number)[]): string {
  return values.map(encodeKeyToken).join('.');
}

export function decodeKey(key: string): string[] {
  return key.split('.').map(decodeKeyToken);
}
