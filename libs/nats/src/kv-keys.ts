// KV keys allow only [-/_=.a-zA-Z0-9], while users and segment names can be any string. Each key
// component is escaped on its own (`=HH` per UTF-8 byte outside [A-Za-z0-9_-]; `=uHHHH` for a lone
// surrogate, which JSON allows and UTF-8 cannot carry) and components are joined with `.`, so
// `z.x`+`y` and `x`+`y.z` stay different keys and a vendor prefix selects a partition.

const plain = /^[A-Za-z0-9_-]+$/;

/** Encodes one key component; injective, and readable for plain names like `usr-01a268`. */
export function encodeKeyToken(value: string | number): string {
  const text = String(value);
  if (text === '') return '=';
  if (plain.test(text)) return text;
  let out = '';
  for (const char of text) {
    if (plain.test(char)) out += char;
    else if (char.length === 1 && char.charCodeAt(0) >= 0xd800 && char.charCodeAt(0) <= 0xdfff) out += `=u${char.charCodeAt(0).toString(16).toUpperCase()}`;
    else for (const byte of Buffer.from(char, 'utf8')) out += `=${byte.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return out;
}

export function decodeKeyToken(token: string): string {
  if (token === '=') return '';
  if (!token.includes('=')) return token;
  let out = '';
  let bytes: number[] = [];
  const flush = () => {
    out += Buffer.from(bytes).toString('utf8');
    bytes = [];
  };
  for (let i = 0; i < token.length; ) {
    if (token[i] === '=' && token[i + 1] === 'u') {
      flush();
      out += String.fromCharCode(parseInt(token.slice(i + 2, i + 6), 16));
      i += 6;
    } else if (token[i] === '=') {
      bytes.push(parseInt(token.slice(i + 1, i + 3), 16));
      i += 3;
    } else {
      bytes.push(token.charCodeAt(i));
      i += 1;
    }
  }
  flush();
  return out;
}

/** The KV key of a composite key's values, e.g. [7, 'seg-1A', 'usr-00ff00'] → `7.seg-1A.usr-00ff00`. */
export function encodeKey(values: readonly (string | number)[]): string {
  return values.map(encodeKeyToken).join('.');
}

export function decodeKey(key: string): string[] {
  return key.split('.').map(decodeKeyToken);
}
